"""The kitpy API gateway in front of stringsvc instances found through etcd (see README.md)."""

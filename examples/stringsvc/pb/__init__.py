"""Generated protobuf and gRPC modules for stringsvc.proto: do not edit, run ``make proto``."""

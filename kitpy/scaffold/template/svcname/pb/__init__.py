"""Generated from svcname.proto by ``make proto``; do not edit."""

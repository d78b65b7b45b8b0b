"""``python -m kitpy.gateway --config gateway.toml``: see :mod:`kitpy.gateway.serve`."""

from kitpy.gateway.serve import main

if __name__ == "__main__":
    main()

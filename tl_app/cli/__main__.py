"""`python -m tl_app.cli ...` (how `tl-app launch` starts its workers)."""
from tl_app.cli.group import main

if __name__ == "__main__":
    main()

"""``python -m aiolightning`` runs the ``aiolightning`` console command."""

from aiolightning.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

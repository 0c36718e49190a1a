from facemark.cli import main

if __name__ == "__main__":  # `python -m facemark`; importing the module runs nothing
    raise SystemExit(main())

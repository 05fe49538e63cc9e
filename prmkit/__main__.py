"""`python -m prmkit` runs the CLI (also what `accelerate launch -m prmkit` needs)."""

from prmkit.cli import main

if __name__ == "__main__":
    main()

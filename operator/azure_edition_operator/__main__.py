"""Entry point: `python -m azure_edition_operator`."""


def main() -> None:
    raise SystemExit("the operator arrives with the operator issue")


if __name__ == "__main__":
    main()

from emonet_cli.cli import main

main()

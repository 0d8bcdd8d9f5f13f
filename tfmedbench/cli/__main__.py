from tfmedbench.cli.main import main

main()

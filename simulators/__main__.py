from simulators.cli import app

app()

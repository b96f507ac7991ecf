from console import create_app

app = create_app()

from nandoctor.cli import run

run()

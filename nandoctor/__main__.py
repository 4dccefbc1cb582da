from nandoctor.cli import main

main(prog_name="nandoctor")

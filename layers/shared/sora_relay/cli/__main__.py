from sora_relay.cli import main

main(prog_name="sora-relay")

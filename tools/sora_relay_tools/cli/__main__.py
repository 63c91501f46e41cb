from sora_relay_tools.cli import main

main(prog_name="sora-relay")

"""Checks that watch a VM's capabilities: Hotpatch status and the SMB over QUIC certificate."""

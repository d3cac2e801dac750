"""The HTTP endpoint iPXE chain-loads for machines nobody registered."""

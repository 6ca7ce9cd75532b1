"""Management commands of the demo application, found through the COMMAND_PACKAGES setting."""

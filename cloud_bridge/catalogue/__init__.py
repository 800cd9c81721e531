"""The till catalogue on the bridge side (issue 22): signing a version for the devices."""

#!/bin/sh
echo "capfs: coverage tools are not available in this offline build" >&2
exit 1

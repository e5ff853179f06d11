#!/bin/sh
cat /greeting
echo "mode: ${APP_MODE} args: $*"

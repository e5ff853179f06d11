// Entry point of the bundled executor image (deploy/build-executor-image.sh bundles it into
// /kaniko/kiln.mjs). The launcher tells which command was invoked in KILN_INVOKED_AS.
import { main } from "../src/cli/main.js";

const invoked = process.env.KILN_INVOKED_AS;
delete process.env.KILN_INVOKED_AS;
void main(invoked === "warmer" || invoked === "kiln" ? invoked : "executor");

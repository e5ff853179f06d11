// Child process of layer-store.test.ts: acquires one layer from a store once the parent says "go".
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { LayerStore } from "../../src/fs/index.js";

const [storeDir, tarPath, diffId] = process.argv.slice(2) as [string, string, string];
const store = await LayerStore.open(storeDir, { maxBytes: 2 ** 40 });
process.stdout.write("ready\n");
const rl = createInterface({ input: process.stdin });
for await (const line of rl) if (line === "go") break;
rl.close();
const e = await store.acquire(diffId, () => Promise.resolve(createReadStream(tarPath)));
await store.release();
process.stdout.write(JSON.stringify({ hit: e.hit, tree: e.tree, files: e.index.entries.size }) + "\n");

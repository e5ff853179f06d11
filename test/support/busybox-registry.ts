import { busyboxOciLayout, pushLayoutToRegistry } from "./base-images.js";
import { startRegistry, type TestRegistry } from "./registry.js";

/**
 * The fixture most build tests start from: a real docker-registry on loopback holding the offline
 * busybox base image (built by umoci, not kiln) as `busybox:latest`; `base` is its reference.
 */
export async function startBusyboxRegistry(): Promise<{ reg: TestRegistry; base: string }> {
  const reg = await startRegistry();
  try {
    await pushLayoutToRegistry(await busyboxOciLayout(), reg.host, "busybox:latest");
  } catch (e) {
    await reg.stop();
    throw e;
  }
  return { reg, base: `${reg.host}/busybox:latest` };
}

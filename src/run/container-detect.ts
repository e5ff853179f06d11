/** Read-only view of the files kaniko's container detection looks at; injected so detection is pure. */
export interface DetectionFs {
  /** True when the path exists. */
  exists(path: string): boolean;
  /** The file's text, or undefined when it cannot be read. */
  read(path: string): string | undefined;
}

const CGROUP_MARKERS = [
  "docker",
  "kubepods",
  "containerd",
  "libpod",
  "crio",
  "lxc",
  "garden",
  "actions_job",
  "buildkit",
];
const K8S_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Explains why kiln is considered to be inside a container, or returns undefined when it is not:
 * /.dockerenv, /run/.containerenv, a `container=` variable in pid 1's environment, a container
 * runtime in /proc/1/cgroup (or /proc/self/cgroup), the Kubernetes service-account directory, or an
 * overlay filesystem mounted at `/`.
 */
export function containerEvidence(fs: DetectionFs): string | undefined {
  if (fs.exists("/.dockerenv")) return "/.dockerenv exists";
  if (fs.exists("/run/.containerenv")) return "/run/.containerenv exists";
  const environ = fs.read("/proc/1/environ");
  if (environ !== undefined && environ.split("\0").some((v) => v.startsWith("container="))) {
    return "pid 1 has a container= environment variable";
  }
  for (const file of ["/proc/1/cgroup", "/proc/self/cgroup"]) {
    const text = fs.read(file);
    if (text === undefined) continue;
    for (const line of text.split("\n")) {
      const cgroupPath = line.split(":").slice(2).join(":");
      const marker = CGROUP_MARKERS.find((m) => cgroupPath.includes(m));
      if (marker !== undefined) return `${file} names the container runtime "${marker}"`;
    }
  }
  if (fs.exists(K8S_SERVICE_ACCOUNT_DIR)) return `${K8S_SERVICE_ACCOUNT_DIR} exists`;
  const mountinfo = fs.read("/proc/self/mountinfo");
  if (mountinfo !== undefined) {
    for (const line of mountinfo.split("\n")) {
      const [left, right] = line.split(" - ");
      if (left === undefined || right === undefined) continue;
      if (left.split(" ")[4] === "/" && right.split(" ")[0] === "overlay") return "/ is an overlay mount";
    }
  }
  return undefined;
}

/** True when kiln runs inside a container (kaniko's detection; see {@link containerEvidence}). */
export function isInContainer(fs: DetectionFs): boolean {
  return containerEvidence(fs) !== undefined;
}

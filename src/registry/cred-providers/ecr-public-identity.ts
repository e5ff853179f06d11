import { access, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import * as path from "node:path";

function set(v: string | undefined): boolean {
  return v !== undefined && v !== "";
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

async function readSmall(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch {
    return "";
  }
}

/**
 * True when this machine looks like an EC2 instance (the AWS-documented DMI/hypervisor checks:
 * Nitro `sys_vendor` "Amazon EC2", Xen `bios_version` "…amazon" or a hypervisor UUID starting "ec2").
 */
export async function looksLikeEc2(sysRoot = "/"): Promise<boolean> {
  const dmi = path.join(sysRoot, "sys/devices/virtual/dmi/id");
  const [vendor, bios, uuid] = await Promise.all([
    readSmall(path.join(dmi, "sys_vendor")),
    readSmall(path.join(dmi, "bios_version")),
    readSmall(path.join(sysRoot, "sys/hypervisor/uuid")),
  ]);
  return vendor === "Amazon EC2" || /amazon/i.test(bios) || /^ec2/i.test(uuid);
}

/**
 * Whether the AWS default credential chain could find an identity here, judged without any network
 * call: access keys, a profile, IRSA's web identity token, ECS/EKS-pod-identity container
 * credentials, a shared credentials/config file, or (unless `AWS_EC2_METADATA_DISABLED`) an EC2
 * instance and its metadata service. When none is visible, ECR Public is used anonymously without
 * loading the AWS SDK or probing the metadata address for seconds.
 */
export async function awsIdentityVisible(env: Record<string, string | undefined>, sysRoot = "/"): Promise<boolean> {
  if (
    set(env.AWS_ACCESS_KEY_ID) ||
    set(env.AWS_PROFILE) ||
    set(env.AWS_WEB_IDENTITY_TOKEN_FILE) ||
    set(env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) ||
    set(env.AWS_CONTAINER_CREDENTIALS_FULL_URI) ||
    set(env.AWS_EC2_METADATA_SERVICE_ENDPOINT)
  ) {
    return true;
  }
  const home = set(env.HOME) ? (env.HOME as string) : homedir();
  const files = [
    set(env.AWS_SHARED_CREDENTIALS_FILE)
      ? (env.AWS_SHARED_CREDENTIALS_FILE as string)
      : path.join(home, ".aws", "credentials"),
    set(env.AWS_CONFIG_FILE) ? (env.AWS_CONFIG_FILE as string) : path.join(home, ".aws", "config"),
  ];
  if ((await Promise.all(files.map(exists))).some(Boolean)) return true;
  const imdsDisabled = set(env.AWS_EC2_METADATA_DISABLED) && env.AWS_EC2_METADATA_DISABLED !== "false";
  return !imdsDisabled && looksLikeEc2(sysRoot);
}

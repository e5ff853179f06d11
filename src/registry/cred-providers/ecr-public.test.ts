import * as assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { ecrProvider } from "./ecr.js";
import { hasCode } from "../../common/errors.js";
import { awsIdentityVisible, looksLikeEc2 } from "./ecr-public-identity.js";
import { ecrPublicCredentials, ecrPublicEndpoint } from "./ecr-public.js";
import { credentialSources, isEcrPublicHost, parseEcrHost } from "./index.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kiln-ecr-public-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fake sysfs root with the given files (relative to it). */
async function sysRoot(name: string, files: Record<string, string>): Promise<string> {
  const root = path.join(dir, name);
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), text);
  }
  await mkdir(root, { recursive: true });
  return root;
}

test("public.ecr.aws is ECR Public (any case or port, like ecr-login's host-name check); lookalikes are not", () => {
  for (const h of ["public.ecr.aws", "PUBLIC.ECR.AWS", "public.ecr.aws:443"]) assert.ok(isEcrPublicHost(h), h);
  for (const h of [
    "public.ecr.aws.evil.example",
    "notpublic.ecr.aws",
    "gallery.ecr.aws",
    "ecr.aws",
    "api.ecr-public.us-east-1.amazonaws.com",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "127.0.0.1:5000",
  ]) {
    assert.ok(!isEcrPublicHost(h), h);
  }
  assert.equal(parseEcrHost("public.ecr.aws"), undefined, "not a private ECR host");
});

test("the ecr provider (ecr-login) is responsible for public.ecr.aws as well as private ECR hosts", () => {
  assert.ok(ecrProvider.matches("public.ecr.aws", {}));
  assert.ok(ecrProvider.matches("123456789012.dkr.ecr.eu-west-1.amazonaws.com", {}));
  assert.ok(!ecrProvider.matches("docker.io", {}));
  assert.ok(!ecrProvider.matches("public.ecr.aws.evil.example", {}));
});

test("EC2 is recognised from DMI (Nitro vendor, Xen amazon BIOS) or the Xen hypervisor UUID", async () => {
  assert.equal(await looksLikeEc2(await sysRoot("none", {})), false);
  assert.equal(
    await looksLikeEc2(await sysRoot("nitro", { "sys/devices/virtual/dmi/id/sys_vendor": "Amazon EC2\n" })),
    true,
  );
  assert.equal(
    await looksLikeEc2(
      await sysRoot("xen-hvm", {
        "sys/devices/virtual/dmi/id/sys_vendor": "Xen\n",
        "sys/devices/virtual/dmi/id/bios_version": "4.11.amazon\n",
      }),
    ),
    true,
  );
  assert.equal(await looksLikeEc2(await sysRoot("xen-pv", { "sys/hypervisor/uuid": "ec2e1916-9099-7caf\n" })), true);
  assert.equal(await looksLikeEc2(await sysRoot("kvm", { "sys/devices/virtual/dmi/id/sys_vendor": "QEMU\n" })), false);
});

test("an AWS identity is visible from env, shared files or EC2, and not otherwise", async () => {
  const home = path.join(dir, "home-empty");
  await mkdir(home, { recursive: true });
  const plain = await sysRoot("plain", {});
  const ec2 = await sysRoot("ec2", { "sys/devices/virtual/dmi/id/sys_vendor": "Amazon EC2\n" });
  const base = { HOME: home };
  assert.equal(await awsIdentityVisible(base, plain), false);
  for (const [k, v] of [
    ["AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"],
    ["AWS_PROFILE", "ci"],
    ["AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"],
    ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"],
    ["AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"],
  ]) {
    assert.equal(await awsIdentityVisible({ ...base, [k as string]: v }, plain), true, k);
  }
  assert.equal(await awsIdentityVisible({ ...base, AWS_ACCESS_KEY_ID: "" }, plain), false, "empty values do not count");

  const withFile = path.join(dir, "home-aws");
  await mkdir(path.join(withFile, ".aws"), { recursive: true });
  await writeFile(path.join(withFile, ".aws", "credentials"), "[default]\n");
  assert.equal(await awsIdentityVisible({ HOME: withFile }, plain), true, "~/.aws/credentials");
  const cfg = path.join(dir, "aws-config");
  await writeFile(cfg, "[default]\n");
  assert.equal(await awsIdentityVisible({ ...base, AWS_CONFIG_FILE: cfg }, plain), true, "AWS_CONFIG_FILE");
  assert.equal(
    await awsIdentityVisible({ ...base, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, "missing") }, plain),
    false,
  );

  assert.equal(await awsIdentityVisible(base, ec2), true, "EC2 instance: the metadata service may hold a role");
  assert.equal(await awsIdentityVisible({ ...base, AWS_EC2_METADATA_DISABLED: "true" }, ec2), false);
  assert.equal(await awsIdentityVisible({ ...base, AWS_EC2_METADATA_DISABLED: "false" }, ec2), true);
});

test("without any AWS identity, public.ecr.aws is anonymous in every path (auto, credHelpers, credsStore)", async () => {
  const home = path.join(dir, "home-anon");
  await mkdir(home, { recursive: true });
  // An unreachable endpoint, and no identity for the SDK's chain either: every path must answer anonymous.
  // (That the SDK is not even loaded then is awsIdentityVisible's job, tested above.)
  const env = { HOME: home, AWS_EC2_METADATA_DISABLED: "true", AWS_ENDPOINT_URL_ECR_PUBLIC: "http://127.0.0.1:9" };
  assert.equal(await ecrPublicCredentials("public.ecr.aws", { env, timeoutMs: 2000 }), undefined);
  const sources = credentialSources(env);
  assert.equal(await sources.auto("public.ecr.aws"), undefined);
  assert.equal(await sources.helper("ecr-login", "public.ecr.aws", "public.ecr.aws", false), undefined);
  assert.equal(await sources.helper("ecr-login", "public.ecr.aws", "public.ecr.aws", true), undefined);
});

test("endpoint override: the AWS SDK's names, https anywhere, plain HTTP on loopback only", () => {
  assert.equal(ecrPublicEndpoint({}), undefined);
  assert.equal(ecrPublicEndpoint({ AWS_ENDPOINT_URL: "https://proxy.example" }), "https://proxy.example");
  assert.equal(
    ecrPublicEndpoint({ AWS_ENDPOINT_URL: "https://a.example", AWS_ENDPOINT_URL_ECR_PUBLIC: "http://127.0.0.1:8080" }),
    "http://127.0.0.1:8080",
    "the service-specific variable wins",
  );
  assert.throws(
    () => ecrPublicEndpoint({ AWS_ENDPOINT_URL_ECR_PUBLIC: "http://user:pw@ecr.internal.example:8080/x?sig=1" }),
    (e: Error) => {
      assert.ok(hasCode(e, "CREDENTIAL_PROVIDER_FAILED"));
      assert.match(e.message, /AWS_ENDPOINT_URL_ECR_PUBLIC=http:\/\/ecr\.internal\.example:8080\/x is not https/);
      assert.doesNotMatch(e.message, /pw|sig=/);
      return true;
    },
  );
  assert.throws(() => ecrPublicEndpoint({ AWS_ENDPOINT_URL: "not a url" }), /AWS_ENDPOINT_URL is not a URL/);
});

test("private ECR host names as ecr-login knows them today: dual-stack and the newer partitions", () => {
  assert.deepEqual(parseEcrHost("123456789012.dkr-ecr.us-east-1.on.aws"), {
    account: "123456789012",
    region: "us-east-1",
    fips: false,
  });
  assert.equal(parseEcrHost("123456789012.dkr-ecr-fips.us-gov-west-1.on.aws")?.fips, true);
  assert.equal(parseEcrHost("123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn")?.region, "cn-north-1");
  assert.equal(parseEcrHost("123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu")?.region, "eusc-de-east-1");
  for (const h of ["123456789012.dkr-ecr.us-east-1.on.aws.evil.example", "123456789012.dkrXecr.us-east-1.on.aws"]) {
    assert.equal(parseEcrHost(h), undefined, h);
  }
});

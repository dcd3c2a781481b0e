/**
 * Starts real servers by hand, for developers:
 *
 *     deno run -A tests/services/cli.ts redis etcd zookeeper dynamodb
 *
 * prints each server's URL and keeps them running until Ctrl-C.
 *
 * @module
 */

import process from "node:process";
import { startDynamoDB } from "./dynamodb.ts";
import { startEtcd } from "./etcd.ts";
import type { Service } from "./process.ts";
import { startRedis } from "./redis.ts";
import { startZookeeper } from "./zookeeper.ts";

const starters: Record<string, () => Promise<Service & { url: unknown }>> = {
  redis: startRedis,
  etcd: startEtcd,
  zookeeper: startZookeeper,
  dynamodb: startDynamoDB,
};

const names = process.argv.slice(2);
if (names.length === 0 || names.some((name) => !starters[name])) {
  console.error(`usage: cli.ts ${Object.keys(starters).join("|")} ...`);
  process.exit(2);
}
const services: Service[] = [];
const stopAll = async () => {
  await Promise.all(services.map((service) => service.stop()));
  process.exit(0);
};
process.on("SIGINT", stopAll);
process.on("SIGTERM", stopAll);
for (const name of names) {
  const service = await starters[name]();
  services.push(service);
  const url = typeof service.url === "function"
    ? service.url("TABLE")
    : service.url;
  console.log(`${name}\t${url}\t(dir ${service.dir})`);
}
console.log("Running; Ctrl-C stops them.");
setInterval(() => {}, 1 << 30);

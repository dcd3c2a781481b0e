// Leader election on every backend, each against its real server.
import { describe, test } from "node:test";
import { openStore } from "../mod.ts";
import { leadershipCases } from "./leadership_cases.ts";

const runner = { describe, test };

leadershipCases(runner, "memory", () => openStore("memory:leadership"));

/**
 * The DynamoDB backend as the registry knows it:
 * `dynamodb://TABLE?region=...&endpoint=...` or
 * `newStore("dynamodb", ["TABLE"], options)`.
 *
 * @module
 */

import type { BackendDescriptor } from "../../core/registry.ts";
import { InvalidConfigurationError } from "../../core/errors.ts";
import { lazyOpen } from "../lazy.ts";
import type { DynamoDBStoreOptions } from "./mod.ts";
import { DYNAMODB_SETTINGS } from "./settings.ts";

/** The DynamoDB backend. */
export const dynamodbBackend: BackendDescriptor = {
  name: "dynamodb",
  settings: DYNAMODB_SETTINGS,
  fromUrl: (url) => {
    if (url.path.replace(/^\/+/, "") !== "") {
      throw new InvalidConfigurationError(
        `A dynamodb: URL names its table as the host (dynamodb://TABLE), and has no path`,
      );
    }
    return { table: table(url.hosts) };
  },
  fromEndpoints: (endpoints) => ({ table: table(endpoints) }),
  open: lazyOpen(
    "dynamodb",
    ["@aws-sdk/client-dynamodb", "@aws-sdk/client-dynamodb-streams"],
    async () => {
      const { DynamoDBStore } = await import("./mod.ts");
      // connect() checks every setting, the table's name included.
      return (settings) =>
        DynamoDBStore.connect(settings as unknown as DynamoDBStoreOptions);
    },
  ),
};

function table(names: string[]): string | undefined {
  if (names.length > 1) {
    throw new InvalidConfigurationError(
      `A DynamoDB store names one table, not ${names.length}`,
    );
  }
  return names[0];
}

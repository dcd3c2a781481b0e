/**
 * Loading a built-in backend's module only when a store of it is opened,
 * and saying which npm client is missing when that is why it cannot load.
 *
 * @module
 */

import { StoreError } from "../core/errors.ts";
import type { OpenOptions, Store } from "../core/types.ts";

/**
 * An `open` for a backend descriptor that imports the backend's
 * module (and so its npm client) at the first open.
 *
 * @param name The backend's name, for the message.
 * @param clients The npm packages the module imports: optional peer
 * dependencies of this package, installed by the user who needs them.
 * @param load Imports the module and opens the store.
 * @returns The descriptor's `open`.
 */
export function lazyOpen(
  name: string,
  clients: readonly string[],
  load: () => Promise<(settings: OpenOptions) => Store | Promise<Store>>,
): (settings: OpenOptions) => Promise<Store> {
  return async (settings) => {
    let open: (settings: OpenOptions) => Store | Promise<Store>;
    try {
      open = await load();
    } catch (error) {
      const client = missingClient(error, clients);
      if (client === undefined) throw error;
      throw new StoreError(
        `The ${name} backend needs the npm package ${client}, which is not installed: npm install ${
          clients.join(" ")
        }`,
        { cause: error },
      );
    }
    return await open(settings);
  };
}

/**
 * The client package a failed import of a backend's module was missing, if
 * that is why it failed (each runtime words it its own way, all naming the
 * package).
 */
function missingClient(
  error: unknown,
  clients: readonly string[],
): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (
    !/cannot find|not found|could not resolve|failed to resolve/i.test(message)
  ) {
    return undefined;
  }
  return clients.find((client) => message.includes(client));
}

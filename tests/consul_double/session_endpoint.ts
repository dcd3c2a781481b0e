/**
 * `/v1/session/*`: create, destroy, renew and read sessions
 * (https://developer.hashicorp.com/consul/api-docs/session).
 *
 * - create answers `{"ID": ...}`; a session belongs to a registered node
 *   (the agent's own here) and its checks must exist (`serfHealth` does);
 * - destroy answers `true`, also for a session that does not exist or
 *   expired ("the operation is idempotent"), and invalidates the session:
 *   its locks are released or deleted as its `Behavior` says;
 * - renew answers the session in a list, or a 404 "Session id '...' not
 *   found";
 * - info answers `[]` for an unknown session.
 *
 * @module
 */

import { type Agent, checkDatacenter, requestNamespace } from "./agent.ts";
import { type Call, HttpError, type Reply } from "./call.ts";
import { parse } from "./json.ts";
import { parseSessionRequest, type Session, SessionError } from "./sessions.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A session as the endpoints return it. */
export function sessionJson(agent: Agent, session: Session) {
  const { ns, ...json } = session;
  return agent.config.namespaces === undefined
    ? json
    : { ...json, Namespace: ns, Partition: "default" };
}

/** Handles a request under `/v1/session/`. */
export function sessionEndpoint(agent: Agent, call: Call): Reply {
  checkDatacenter(agent, call);
  const ns = requestNamespace(agent, call);
  const [, , action, ...rest] = call.path.split("/");
  const id = rest.join("/");
  const state = agent.state;
  switch (action) {
    case "create": {
      method(call, "PUT");
      agent.acl.require(call, "session:write", agent.config.nodeName);
      let body: unknown;
      if (call.body.length > 0) {
        try {
          body = parse(new TextDecoder().decode(call.body));
        } catch (error) {
          throw new HttpError(
            400,
            `Request decode failed: ${(error as Error).message}`,
          );
        }
      }
      let request;
      try {
        request = parseSessionRequest(body, {
          node: agent.config.nodeName,
          ttlMinMs: agent.config.sessionTtlMinMs,
        });
      } catch (error) {
        if (error instanceof SessionError) {
          throw new HttpError(error.status, error.message);
        }
        throw error;
      }
      if (request.node !== agent.config.nodeName) {
        throw new HttpError(500, "Missing node registration");
      }
      for (const check of request.checks) {
        if (check !== "serfHealth") {
          throw new HttpError(500, `Missing check '${check}' registration`);
        }
      }
      const session = state.apply((idx) =>
        state.sessions.create(idx, ns, request)
      );
      return call.json({ ID: session.ID });
    }
    case "destroy": {
      method(call, "PUT");
      if (id === "") throw new HttpError(400, "Missing session");
      agent.acl.require(call, "session:write", agent.config.nodeName);
      if (!UUID.test(id)) {
        throw new HttpError(500, `Session ID must be a valid UUID: ${id}`);
      }
      state.apply((idx) => state.invalidate(id, idx));
      return call.json(true);
    }
    case "renew": {
      method(call, "PUT");
      if (id === "") throw new HttpError(400, "Missing session");
      agent.acl.require(call, "session:write", agent.config.nodeName);
      const session = state.sessions.get(id)?.ns === ns
        ? state.sessions.renew(id)
        : undefined;
      if (!session) throw new HttpError(404, `Session id '${id}' not found`);
      return call.json([sessionJson(agent, session)]);
    }
    case "info": {
      method(call, "GET");
      if (id === "") throw new HttpError(400, "Missing session");
      agent.acl.require(call, "session:read", agent.config.nodeName);
      call.consistency();
      const session = state.sessions.get(id);
      call.indexed(state.index);
      return call.json(
        session && session.ns === ns ? [sessionJson(agent, session)] : [],
      );
    }
    case "list":
    case "node": {
      method(call, "GET");
      agent.acl.require(call, "session:read", agent.config.nodeName);
      call.consistency();
      call.indexed(state.index);
      const sessions = state.sessions.list(ns).filter((s) =>
        action === "list" || s.Node === id
      );
      return call.json(sessions.map((s) => sessionJson(agent, s)));
    }
    default:
      throw new HttpError(404, "404 page not found");
  }
}

function method(call: Call, expected: string): void {
  if (call.method !== expected) {
    throw new HttpError(405, `method ${call.method} not allowed`);
  }
}

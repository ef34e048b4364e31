// The plain-JavaScript runtime + D1 floor of `cargo xtask bench`: the same request shape and the
// same single D1 query as the product's GET by id, on the same runtime and database.
//   default: what a first Worker would write, `env.SHARD.prepare(...).first()` (no session);
//   `x-floor-session: 1`: the product's exact D1 call, the query in a `first-unconstrained`
//   session with its bookmark returned (locally each session query also asks the database
//   for its current bookmark, a cost the plain read does not pay).
const GET_BY_ID =
  "SELECT id, body FROM clients WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL";

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (!path.startsWith("/v1/clients/")) return new Response("not found", { status: 404 });
    const id = path.slice("/v1/clients/".length);
    const account = request.headers.get("x-account-id") || "";
    if (request.headers.get("x-floor-session") === "1") {
      const session = env.SHARD.withSession("first-unconstrained");
      const { results } = await session.prepare(GET_BY_ID).bind(account, id).all();
      if (results.length === 0) return new Response("not found", { status: 404 });
      const response = Response.json(results[0]);
      const bookmark = session.getBookmark();
      if (bookmark) response.headers.set("x-d1-bookmark", bookmark);
      return response;
    }
    const row = await env.SHARD.prepare(GET_BY_ID).bind(account, id).first();
    if (!row) return new Response("not found", { status: 404 });
    return Response.json(row);
  },
};

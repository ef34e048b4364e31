// The plain-JavaScript runtime + D1 floor of `cargo xtask bench`: the same request shape and the
// same single D1 query as bench/floor-worker (Rust), on the same runtime and database.
const GET_BY_ID =
  "SELECT id, body FROM clients WHERE account_id = ?1 AND id = ?2 AND deleted_at IS NULL";

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (!path.startsWith("/v1/clients/")) return new Response("not found", { status: 404 });
    const id = path.slice("/v1/clients/".length);
    const account = request.headers.get("x-account-id") || "";
    const row = await env.SHARD.prepare(GET_BY_ID).bind(account, id).first();
    if (!row) return new Response("not found", { status: 404 });
    return Response.json(row);
  },
};

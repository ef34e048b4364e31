// LOCAL ONLY. Stands in for Cloudflare's zone routing in `wrangler dev`, which serves only the
// first config over HTTP: routes each request to the deployment its Host names (as custom
// domains and routes do when deployed), and hands cron triggers to the scheduler. The operator
// Worker is reached only with Host ops.localhost (HOST_ROUTES); no tenant host ever reaches it,
// and the scheduler is reached only by cron triggers here and by the operator's service binding. It holds no
// product logic and is never deployed.
export default {
  async fetch(request, env) {
    // The local mock identity provider (tests' issuers live under /mock-idp/<realm>).
    if (new URL(request.url).pathname.startsWith("/mock-idp/")) {
      return env.MOCK_IDP.fetch(request);
    }
    const host = (request.headers.get("host") || "").split(":")[0].toLowerCase();
    const routes = JSON.parse(env.HOST_ROUTES || "{}");
    const target = env[routes[host] || "API"];
    return target.fetch(request);
  },
  async scheduled(controller, env) {
    await env.SCHEDULER.scheduled({ cron: controller.cron, scheduledTime: controller.scheduledTime });
  },
};

/**
 * The pool example's application: a small HTTP server in the spirit of the
 * seed's nodeapp.js. `GET /` answers "response from ADDRESS:PORT"; anything
 * else is a 404. Listens on 127.0.0.1 at $PORT (default 3000).
 *
 * Run: PORT=3001 deno run --allow-net --allow-env examples/pool/app.ts
 */
const port = Number(Deno.env.get("PORT") ?? "3000");

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
  const path = new URL(request.url).pathname;
  if (path !== "/") return new Response("Not found\n", { status: 404 });
  return new Response(`response from 127.0.0.1:${port}\n`);
});

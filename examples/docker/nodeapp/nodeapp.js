// The seed's Node.js application: GET / answers "response from ADDRESS:PORT" (the
// address and port the connection reached, so a pool shows which container answered);
// anything else is a 404. Listens on $PORT (default 3000).
const http = require("http");
const express = require("express");
const router = express.Router();

router.get("/", function (req, res) {
  res.send(`response from ${req.socket.localAddress}:${req.socket.localPort}`);
});

const app = express();
app.use("/", router);

// catch 404 and forward to error handler
app.use(function (_req, res) {
  res.status(404).send("Not found");
});

const port = process.env.PORT || "3000";
const server = http.createServer(app);
server.listen(port);

// As PID 1 of a container, node gets no default handler for SIGTERM: without this,
// `docker stop` waits its 10 seconds and then kills the container.
process.on("SIGTERM", () => process.exit(0));

// Preloaded into Portkey's gateway (`node --require bench/portkey_loopback.cjs start-server.js`): its
// start-server.js has no host option (neither flag nor environment variable) and listens on all interfaces.
// This makes a listen() that names no host bind 127.0.0.1, as every other server of the benchmark does.
"use strict";
const net = require("net");

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first !== null && typeof first === "object" && !Array.isArray(first)) {
    if (first.host === undefined && first.path === undefined && first.fd === undefined) {
      args[0] = { ...first, host: "127.0.0.1" };
    }
  } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    if (args.length === 1 || args[1] === undefined || args[1] === null) {
      args[1] = "127.0.0.1";
    } else if (typeof args[1] !== "string") {
      args.splice(1, 0, "127.0.0.1"); // listen(port, backlog, cb) or listen(port, cb)
    }
  }
  return listen.apply(this, args);
};

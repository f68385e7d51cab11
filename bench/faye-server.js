// Faye's own Node server with its in-memory engine: the comparison target of the Tidings benchmark.
// Serves Bayeux at http://127.0.0.1:PORT/bayeux (long-polling and WebSocket), the same path and channel
// layout the load tool uses against Tidings. Usage: node faye-server.js PORT
'use strict';
const http = require('http');
const faye = require('faye');

const port = Number(process.argv[2] || 0);
// timeout: seconds a /meta/connect is held, as Tidings' default ConnectTimeout (30 s).
const bayeux = new faye.NodeAdapter({ mount: '/bayeux', timeout: 30 });
const server = http.createServer();
bayeux.attach(server);
server.listen(port, '127.0.0.1', () => {
  console.log(`faye listening on http://127.0.0.1:${server.address().port}/bayeux (pid ${process.pid})`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}

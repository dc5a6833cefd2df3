// Node 20 lacks Promise.withResolvers, which js-ipfs 0.66 dependencies call.
// Loaded with NODE_OPTIONS=--require <this file> before the daemon starts.
'use strict';
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

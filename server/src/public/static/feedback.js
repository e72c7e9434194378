// The public feedback form's spam protection (issue 15): before the form is sent, find a nonce
// such that SHA-256("<challenge>:<nonce>") starts with the number of zero bits the server asked
// for (see server/src/domain/feedback/pow.rs). Plain SHA-256 here because crypto.subtle exists
// only on https pages. The work runs in slices so the page stays responsive.
(function () {
  'use strict';
  var K = [0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
  function sha256(s) {
    var n = s.length, total = ((n + 9 + 63) >> 6) << 4, words = new Array(total), i;
    for (i = 0; i < total; i++) words[i] = 0;
    for (i = 0; i < n; i++) words[i >> 2] |= (s.charCodeAt(i) & 0xff) << (24 - (i & 3) * 8);
    words[n >> 2] |= 0x80 << (24 - (n & 3) * 8);
    words[total - 1] = n * 8;
    var H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var W = new Array(64);
    for (var j = 0; j < total; j += 16) {
      for (i = 0; i < 16; i++) W[i] = words[j + i] | 0;
      for (i = 16; i < 64; i++) {
        var x = W[i - 15], y = W[i - 2];
        var s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
        var s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
        W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (i = 0; i < 64; i++) {
        var S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        var t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
        var S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        var t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    return H;
  }
  function zeroBits(H) {
    var n = 0;
    for (var i = 0; i < 8; i++) {
      var w = H[i] >>> 0;
      if (w === 0) { n += 32; continue; }
      return n + Math.clz32(w);
    }
    return n;
  }
  if (typeof module !== 'undefined') { module.exports = { sha256: sha256, zeroBits: zeroBits }; return; }
  var form = document.getElementById('feedback-form');
  if (!form) return;
  var status = document.getElementById('pow-status');
  var sending = false;
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (sending) return;
    sending = true;
    var button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    var challenge = form.elements['challenge'].value;
    var bits = parseInt(form.getAttribute('data-bits'), 10) || 16;
    if (status) status.textContent = status.getAttribute('data-working');
    var nonce = 0;
    (function slice() {
      for (var k = 0; k < 5000; k++, nonce++) {
        if (zeroBits(sha256(challenge + ':' + nonce)) >= bits) {
          form.elements['nonce'].value = String(nonce);
          if (status) status.textContent = status.getAttribute('data-sending');
          form.submit();
          return;
        }
      }
      setTimeout(slice, 0);
    })();
  });
})();

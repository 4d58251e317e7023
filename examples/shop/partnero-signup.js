/*
 * partnero-signup.js: send a shop's sign-ups to partnero-bridge.
 *
 * PartneroJS keeps the referring partner's key in the first-party cookie
 * "partnero_partner". The bridge usually runs on another domain, where the browser will
 * not send that cookie, so this script reads it and puts it in the request body.
 *
 * Usage:
 *   <script src="partnero-signup.js" data-bridge-url="https://<api>.execute-api...."></script>
 *   PartneroSignup.send({email: "...", name: "..."}).then(function (answer) { ... });
 * or mark a form: <form data-partnero-signup> with inputs named email, name, surname.
 */
(function (window, document) {
  "use strict";
  var COOKIE = "partnero_partner";
  var script = document.currentScript;

  function bridgeUrl() {
    var configured = (script && script.getAttribute("data-bridge-url")) ||
      window.PARTNERO_BRIDGE_URL || "";
    return configured.replace(/\/+$/, "");
  }

  // The bridge's check of partner_key: 1 to 255 characters, no spaces or control
  // characters. A cookie value that fails it counts as no cookie, as the bridge treats its
  // own cookie, so a sign-up is never refused for a cookie the visitor cannot fix.
  var PARTNER_KEY = /^[^\s\x00-\x1f\x7f]{1,255}$/;

  function partnerKey() {
    var match = document.cookie.match(new RegExp("(?:^|;\\s*)" + COOKIE + "=([^;]*)"));
    if (!match) return null;
    var value;
    try {
      value = decodeURIComponent(match[1]).trim();
    } catch (error) {
      return null;  // not valid percent-encoding
    }
    return PARTNER_KEY.test(value) ? value : null;
  }

  function send(customer) {
    var body = {email: customer.email};
    ["name", "surname", "key", "tags"].forEach(function (field) {
      if (customer[field]) body[field] = customer[field];
    });
    var partner = partnerKey();
    if (partner) body.partner_key = partner;
    body.referral_url = window.location.href;
    // A JSON content type makes this a CORS request with a preflight: the bridge only
    // answers origins it was told to trust (SIGNUP_ALLOWED_ORIGINS).
    return fetch(bridgeUrl() + "/signup", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
      credentials: "omit",
    }).then(function (response) {
      return response.json().then(function (json) {
        return {ok: response.ok, status: response.status, body: json};
      });
    });
  }

  function wireForms() {
    var forms = document.querySelectorAll("form[data-partnero-signup]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var data = new FormData(form);
        var status = form.querySelector("[data-partnero-status]");
        if (status) status.textContent = "Sending…";
        send({email: data.get("email"), name: data.get("name"), surname: data.get("surname")})
          .then(function (answer) {
            form.setAttribute("data-result", String(answer.status));
            if (status) {
              status.textContent = answer.ok ? "Thanks for signing up!" :
                "Could not sign up: " + (answer.body.message || answer.status);
            }
          })
          .catch(function (error) {
            form.setAttribute("data-result", "network-error");
            if (status) status.textContent = "Could not reach the sign-up service.";
          });
      });
    });
  }

  window.PartneroSignup = {send: send, partnerKey: partnerKey};
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wireForms);
  } else {
    wireForms();
  }
})(window, document);

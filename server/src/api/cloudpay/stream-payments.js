// stream-payments.js: a browser client for the CloudPay API served by boxoffice.
// Usage:
//   const payments = StreamPayments.create({ baseUrl: "http://127.0.0.1:8080/cloudpay" });
//   await payments.startSession({ jwt: idToken });
//   const { SubscriptionPlanOptions } = await payments.packages({ location: "GB" });
(function (global) {
  "use strict";

  function CloudPayError(status, body) {
    var message = body && body.body && body.body.message ? body.body.message : "CloudPay request failed";
    var error = new Error(message);
    error.name = "CloudPayError";
    error.status = status;
    error.body = body;
    return error;
  }

  function create(options) {
    var baseUrl = String((options && options.baseUrl) || "").replace(/\/+$/, "");
    var credential = null;

    function url(path, query) {
      var target = new URL(baseUrl + path, global.location ? global.location.href : undefined);
      var params = query || {};
      Object.keys(params).forEach(function (key) {
        if (params[key] !== undefined && params[key] !== null) {
          target.searchParams.set(key, params[key]);
        }
      });
      if (credential) {
        target.searchParams.set(credential.name, credential.value);
      }
      return target.toString();
    }

    function request(method, path, query, body, headers) {
      var init = { method: method, headers: Object.assign({ Accept: "application/json" }, headers || {}), credentials: "include" };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      return global.fetch(url(path, query), init).then(function (response) {
        return response.text().then(function (text) {
          var parsed = text ? JSON.parse(text) : null;
          if (!response.ok) {
            throw CloudPayError(response.status, parsed);
          }
          return parsed;
        });
      });
    }

    function locationHeader(location) {
      return location ? { location: location } : undefined;
    }

    return {
      // Starts a session with the SSO provider's JWT ({ jwt }) or email and password.
      startSession: function (login) {
        credential = null;
        var query = login.jwt ? { apijwttoken: login.jwt } : { emailaddress: login.emailaddress, password: login.password };
        return request("GET", "/api/v1/session/start", query, undefined, locationHeader(login.location)).then(function (model) {
          credential = { name: "apisessionid", value: model.AuthenticationToken };
          return model;
        });
      },
      useSession: function (authenticationToken) {
        credential = { name: "apisessionid", value: authenticationToken };
      },
      presence: function () {
        return request("GET", "/api/v1/session/prescence");
      },
      terminate: function () {
        return request("GET", "/api/v1/session/terminate").then(function (model) {
          credential = null;
          return model;
        });
      },
      packages: function (filter) {
        var options = filter || {};
        return request("GET", "/api/v1/package", { type: options.type, entitlement: options.entitlement }, undefined, locationHeader(options.location));
      },
      package: function (packageId, location) {
        return request("GET", "/api/v1/package/" + encodeURIComponent(packageId), undefined, undefined, locationHeader(location));
      },
      account: function () {
        return request("GET", "/api/v1/account");
      },
      updateAccount: function (patch) {
        return request("PATCH", "/api/v1/account", undefined, patch);
      },
      ksession: function (entryId) {
        return request("GET", "/api/v1/session/ksession", { entryid: entryId });
      },
      resume: function (paging) {
        return request("GET", "/api/v1/resume", paging || {});
      }
    };
  }

  global.StreamPayments = { create: create, version: "1.0.0" };
})(typeof window !== "undefined" ? window : globalThis);

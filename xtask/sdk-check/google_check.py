#!/usr/bin/env python3
"""Checks that Google's official Python client for the Play Developer API
(google-api-python-client, with google-auth) works unchanged against boxoffice's Google Play
simulator.

Only the endpoint and the key file differ from production: the client is
googleapiclient.discovery.build("androidpublisher", "v3", static_discovery=True,
client_options={"api_endpoint": ...}) with google.oauth2.service_account.Credentials made
from the service account key file the simulator's control surface hands out (its token_uri
points at the simulator, so google-auth's JWT bearer grant runs offline against it).

The check reads the catalogue from the control surface, buys a subscription there (playing
the user in the Play Store), reads it with purchases.subscriptionsv2.get (the token flow
runs on the first call) and checks its fields, acknowledges it with
purchases.subscriptions.acknowledge and sees the acknowledgement, cancels it with
purchases.subscriptionsv2.cancel and sees it cancelled, revokes a second one with
purchases.subscriptionsv2.revoke and sees it expired; buys a one-time product, reads it with
purchases.products.get, acknowledges and consumes it; and sees an unknown token raise
HttpError 400 (reason "invalid") and an unknown package HttpError 404
("applicationNotFound"). Last, it points the RTDN push subscription at a local receiver for a
test notification (and back where it was), and verifies the push's OIDC token with
google.oauth2.id_token against the simulator's /oauth2/v1/certs.

Exit status 0 when every step passed; 1 with a message naming the failed step otherwise.
"""

import argparse
import base64
import http.server
import json
import secrets
import sys
import threading
import urllib.error
import urllib.request

import google.auth
import google.auth.transport.requests
from google.auth.exceptions import GoogleAuthError
from google.oauth2 import id_token, service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.version import __version__ as client_version

SCOPE = "https://www.googleapis.com/auth/androidpublisher"


class CheckFailed(Exception):
    """A step did not behave as Google Play does."""


def step(message):
    print(f"  ok  {message}", flush=True)


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def control(url, body=None, method=None):
    """A control-surface call: GET without a body, POST (or `method`) with one."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"{url} answered {error.code}: {error.read()[:300]!r}") from error
    except (urllib.error.URLError, ValueError) as error:
        raise CheckFailed(f"{url} failed: {error}") from error


def default_control_url(api_endpoint):
    """Simulator mode mounts the simulator at /sim/google and its controls at
    /sim/control/google."""
    base = api_endpoint.rstrip("/")
    if base.endswith("/google"):
        return base[: -len("/google")] + "/control/google"
    return base + "/sim/control/google"


def http_error(call):
    """The HttpError a call raises (or a CheckFailed when it succeeds)."""
    try:
        call.execute()
    except HttpError as error:
        return error
    raise CheckFailed("the call succeeded")


class PushReceiver(http.server.ThreadingHTTPServer):
    """A push endpoint on a random local port that keeps what it is sent and answers 204."""

    def __init__(self):
        self.pushes = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.pushes.append((dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/rtdn"


def check_push(api_endpoint, control_url, package):
    """Points the RTDN push subscription at a local receiver for a test notification (and
    back where it was), and verifies the push's OIDC token with google-auth against the
    simulator's certificates, as a receiver on Google's infrastructure would."""
    previous = control(f"{control_url}/rtdn")
    receiver = PushReceiver()
    audience = f"sdk-check-{secrets.token_hex(4)}"
    push_account = "rtdn-push@sdk-check.iam.gserviceaccount.com"
    try:
        control(
            f"{control_url}/rtdn",
            {"endpoint": receiver.url, "subscriptionId": "sdk-check", "oidcServiceAccountEmail": push_account, "audience": audience},
            method="PUT",
        )
        message = control(f"{control_url}/rtdn/test", {"packageName": package})
        expect(message.get("state") == "delivered", f"the test notification was not delivered: {message}")
    finally:
        restored = {}
        if previous.get("endpoint"):
            restored = {
                "endpoint": previous["endpoint"],
                "subscriptionId": previous["subscription"].rsplit("/", 1)[-1],
                "oidcServiceAccountEmail": previous.get("oidcServiceAccountEmail"),
                "audience": previous.get("audience"),
            }
        control(f"{control_url}/rtdn", restored, method="PUT")
        receiver.shutdown()
    # Retries the subscription still owed (the purchases above are unknown to the server,
    # which refuses their notifications) go to the new endpoint too, as in Pub/Sub.
    tests = []
    for headers, body in receiver.pushes:
        envelope = json.loads(body)
        notification = json.loads(base64.b64decode(envelope["message"]["data"]))
        if "testNotification" in notification:
            tests.append((headers, envelope, notification))
    expect(len(tests) == 1, f"the receiver got {len(tests)} test notifications")
    headers, envelope, notification = tests[0]
    expect(notification.get("packageName") == package, f"the notification is {notification}")
    expect(notification.get("testNotification") == {"version": "1.0"}, f"the notification is {notification}")
    expect(envelope.get("subscription", "").endswith("/subscriptions/sdk-check"), f"subscription is {envelope.get('subscription')!r}")
    authorization = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
    expect(authorization.startswith("Bearer "), "the push carries no OIDC token")
    claims = id_token.verify_token(
        authorization[len("Bearer ") :],
        google.auth.transport.requests.Request(),
        audience=audience,
        certs_url=f"{api_endpoint.rstrip('/')}/oauth2/v1/certs",
    )
    expect(claims.get("iss") == "https://accounts.google.com", f"iss is {claims.get('iss')!r}")
    expect(claims.get("email") == push_account and claims.get("email_verified") is True, f"the token's claims are {claims}")
    step("RTDN test notification pushed; its OIDC token verified by google.oauth2.id_token")


def run(args):
    control_url = (args.control_url or default_control_url(args.api_endpoint)).rstrip("/")
    key = control(f"{control_url}/service_account_key")
    credentials = service_account.Credentials.from_service_account_info(key, scopes=[SCOPE])
    step(f"service account {key['client_email']} (token_uri {key['token_uri']})")

    service = build(
        "androidpublisher",
        "v3",
        credentials=credentials,
        client_options={"api_endpoint": args.api_endpoint},
        static_discovery=True,
        cache_discovery=False,
    )
    purchases = service.purchases()

    state = control(f"{control_url}/state")
    applications = state.get("applications") or []
    expect(applications, f"the simulator has no app: {state}")
    package = args.package_name or applications[0]["packageName"]
    application = next((app for app in applications if app["packageName"] == package), None)
    expect(application, f"the simulator has no app {package}")
    subscriptions = application.get("subscriptions") or []
    expect(subscriptions, f"{package} sells no subscription")
    subscription_id = subscriptions[0]["productId"]
    base_plan = subscriptions[0]["basePlans"][0]
    step(f"{package}: subscription {subscription_id} ({base_plan['basePlanId']}, {base_plan['billingPeriod']})")

    account = f"sdk-check-{secrets.token_hex(6)}"
    bought = control(
        f"{control_url}/subscriptions",
        {"packageName": package, "productId": subscription_id, "regionCode": "DE", "obfuscatedExternalAccountId": account},
    )
    token, order_id = bought["purchaseToken"], bought["orderId"]
    step(f"bought on the control surface: order {order_id}")

    got = purchases.subscriptionsv2().get(packageName=package, token=token).execute()
    expect(credentials.valid and credentials.token.startswith("ya29."), "no access token from the simulator's token endpoint")
    step("google-auth got an access token with the service account's JWT bearer grant")
    expect(got.get("kind") == "androidpublisher#subscriptionPurchaseV2", f"kind is {got.get('kind')!r}")
    expect(got.get("subscriptionState") == "SUBSCRIPTION_STATE_ACTIVE", f"state is {got.get('subscriptionState')!r}")
    expect(got.get("latestOrderId") == order_id, f"latestOrderId is {got.get('latestOrderId')!r}, expected {order_id}")
    expect(got.get("regionCode") == "DE", f"regionCode is {got.get('regionCode')!r}")
    expect(got.get("acknowledgementState") == "ACKNOWLEDGEMENT_STATE_PENDING", f"acknowledgementState is {got.get('acknowledgementState')!r}")
    identifiers = got.get("externalAccountIdentifiers") or {}
    expect(identifiers.get("obfuscatedExternalAccountId") == account, f"externalAccountIdentifiers is {identifiers}")
    line_items = got.get("lineItems") or []
    expect(len(line_items) == 1, f"lineItems is {line_items}")
    item = line_items[0]
    expect(item.get("productId") == subscription_id, f"lineItems[0].productId is {item.get('productId')!r}")
    expect(item.get("expiryTime", "") > got.get("startTime", ""), "expiryTime is not after startTime")
    expect((item.get("autoRenewingPlan") or {}).get("autoRenewEnabled") is True, f"autoRenewingPlan is {item.get('autoRenewingPlan')}")
    price = (item.get("autoRenewingPlan") or {}).get("recurringPrice") or {}
    expect(price.get("currencyCode") == base_plan["currencyCode"], f"recurringPrice is {price}")
    expect((item.get("offerDetails") or {}).get("basePlanId") == base_plan["basePlanId"], f"offerDetails is {item.get('offerDetails')}")
    step(f"purchases.subscriptionsv2.get: {got['subscriptionState']}, expires {item['expiryTime']}")

    acknowledged = (
        purchases.subscriptions()
        .acknowledge(packageName=package, subscriptionId=subscription_id, token=token, body={"developerPayload": "sdk-check"})
        .execute()
    )
    expect(not acknowledged, f"acknowledge answered {acknowledged!r}")
    got = purchases.subscriptionsv2().get(packageName=package, token=token).execute()
    expect(got.get("acknowledgementState") == "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED", f"acknowledgementState is {got.get('acknowledgementState')!r}")
    step("purchases.subscriptions.acknowledge")

    cancelled = (
        purchases.subscriptionsv2()
        .cancel(
            packageName=package,
            token=token,
            body={"cancellationContext": {"cancellationType": "USER_REQUESTED_STOP_RENEWALS"}},
        )
        .execute()
    )
    expect(cancelled == {}, f"cancel answered {cancelled!r}")
    got = purchases.subscriptionsv2().get(packageName=package, token=token).execute()
    expect(got.get("subscriptionState") == "SUBSCRIPTION_STATE_CANCELED", f"after cancel the state is {got.get('subscriptionState')!r}")
    expect("userInitiatedCancellation" in (got.get("canceledStateContext") or {}), f"canceledStateContext is {got.get('canceledStateContext')}")
    expect(got["lineItems"][0]["autoRenewingPlan"]["autoRenewEnabled"] is False, "auto-renewal is still on after cancel")
    step("purchases.subscriptionsv2.cancel")

    second = control(f"{control_url}/subscriptions", {"packageName": package, "productId": subscription_id})
    revoked = (
        purchases.subscriptionsv2()
        .revoke(packageName=package, token=second["purchaseToken"], body={"revocationContext": {"fullRefund": {}}})
        .execute()
    )
    expect(revoked == {}, f"revoke answered {revoked!r}")
    got = purchases.subscriptionsv2().get(packageName=package, token=second["purchaseToken"]).execute()
    expect(got.get("subscriptionState") == "SUBSCRIPTION_STATE_EXPIRED", f"after revoke the state is {got.get('subscriptionState')!r}")
    step("purchases.subscriptionsv2.revoke")

    one_time = application.get("oneTimeProducts") or []
    if one_time:
        product_id = one_time[0]
        product = control(f"{control_url}/products", {"packageName": package, "productId": product_id})
        product_token = product["purchaseToken"]
        got = purchases.products().get(packageName=package, productId=product_id, token=product_token).execute()
        expect(got.get("kind") == "androidpublisher#productPurchase", f"kind is {got.get('kind')!r}")
        expect(got.get("purchaseState") == 0, f"purchaseState is {got.get('purchaseState')!r}")
        expect(got.get("consumptionState") == 0, f"consumptionState is {got.get('consumptionState')!r}")
        expect(got.get("orderId") == product["orderId"], f"orderId is {got.get('orderId')!r}")
        step(f"purchases.products.get: {product_id}, order {got['orderId']}")
        purchases.products().acknowledge(packageName=package, productId=product_id, token=product_token, body={}).execute()
        purchases.products().consume(packageName=package, productId=product_id, token=product_token).execute()
        got = purchases.products().get(packageName=package, productId=product_id, token=product_token).execute()
        expect(got.get("acknowledgementState") == 1 and got.get("consumptionState") == 1, f"after acknowledge and consume: {got}")
        step("purchases.products.acknowledge and consume")
    else:
        step(f"{package} sells no one-time product: products skipped")

    check_push(args.api_endpoint, control_url, package)

    error = http_error(purchases.subscriptionsv2().get(packageName=package, token="not-a-purchase-token"))
    expect(error.resp.status == 400, f"an unknown token answered {error.resp.status}")
    expect(error.reason == "Invalid Value", f"an unknown token's message is {error.reason!r}")
    expect(any(detail.get("reason") == "invalid" for detail in error.error_details or []), f"details are {error.error_details}")
    step("an unknown token raises HttpError 400 Invalid Value")

    error = http_error(purchases.subscriptionsv2().get(packageName="com.example.unknown", token=token))
    expect(error.resp.status == 404, f"an unknown package answered {error.resp.status}")
    expect(any(detail.get("reason") == "applicationNotFound" for detail in error.error_details or []), f"details are {error.error_details}")
    step("an unknown package raises HttpError 404 applicationNotFound")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-endpoint", required=True, help="the simulator, e.g. http://127.0.0.1:8080/sim/google")
    parser.add_argument(
        "--control-url",
        help="the simulator's Google control surface (default: derived from --api-endpoint, "
        "e.g. http://127.0.0.1:8080/sim/control/google)",
    )
    parser.add_argument("--package-name", help="the app to check (default: the first the simulator has)")
    args = parser.parse_args()
    print(
        f"androidpublisher SDK check against {args.api_endpoint} "
        f"(google-api-python-client {client_version}, google-auth {google.auth.__version__})",
        flush=True,
    )
    try:
        run(args)
    except CheckFailed as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    except HttpError as error:
        print(f"FAIL: {error.uri} answered {error.resp.status}: {error.reason}", file=sys.stderr)
        return 1
    except GoogleAuthError as error:
        print(f"FAIL: google-auth could not get a token: {error}", file=sys.stderr)
        return 1
    print("androidpublisher SDK check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks that Apple's official Python library (app-store-server-library) works unchanged
against an App Store: boxoffice's App Store simulator.

Only the API client's base URL differs from production use (client._base_url, which the
library sets from the environment), and the verifier trusts the simulator's root certificate
instead of Apple's root CA G3 (with enable_online_checks=False: there is no OCSP responder).

The check reads the simulated app from the control surface (GET {control}/apple/app: bundle
id, app Apple id, the in-app purchase key, products, URLs), downloads the root certificate,
and runs a small HTTP server on a random local port registered as both environments'
notification URL. Then:
- a sandbox purchase through the control surface; its signed transaction and renewal info
  verified and decoded by SignedDataVerifier(environment=SANDBOX); the SUBSCRIBED /
  INITIAL_BUY notification received and verified with verify_and_decode_notification;
- AppStoreServerAPIClient(environment=SANDBOX) on the simulator's sandbox base:
  get_transaction_info, get_all_subscription_statuses, get_transaction_history (v1 and v2,
  with filters), every JWS in the answers verified; request_test_notification (the TEST
  notification received and verified) and get_test_notification_status;
- errors: an unknown transaction raises APIException 404 / 4040010
  (TRANSACTION_ID_NOT_FOUND), a malformed one 400 / 4000006, a client with a key the App
  Store does not know 401; a sandbox transaction is not found in production;
- a tampered JWS (payload changed, signature kept) and a JWS whose x5c lost a certificate
  raise VerificationException;
- a production purchase: accepted by a PRODUCTION verifier (with app_apple_id), refused by a
  SANDBOX one (INVALID_ENVIRONMENT), readable with a PRODUCTION client;
- verifyReceipt over plain HTTP: status 0 with the transaction, 21004 with a wrong secret,
  21007 for a sandbox receipt sent to production, 21002 for garbage;
- last, the virtual clock moved 32 days ({clock} POST {"advance": "32d"}), which settles the
  renewal before answering: the DID_RENEW notification received and verified, its
  transaction a RENEWAL of the same original transaction. (The library signs its API tokens
  with the machine's clock, so API calls come before the clock is moved: the simulator reads
  `exp` on its own, moved, clock.)

Exit status 0 when every step passed; 1 with a message naming the failed step otherwise.
"""

import argparse
import base64
import http.server
import json
import queue
import sys
import threading
import urllib.error
import urllib.request
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appstoreserverlibrary.api_client import (
    APIError,
    APIException,
    AppStoreServerAPIClient,
    GetTransactionHistoryVersion,
)
from appstoreserverlibrary.models.AutoRenewStatus import AutoRenewStatus
from appstoreserverlibrary.models.Environment import Environment
from appstoreserverlibrary.models.InAppOwnershipType import InAppOwnershipType
from appstoreserverlibrary.models.NotificationTypeV2 import NotificationTypeV2
from appstoreserverlibrary.models.SendAttemptResult import SendAttemptResult
from appstoreserverlibrary.models.Status import Status
from appstoreserverlibrary.models.Subtype import Subtype
from appstoreserverlibrary.models.TransactionHistoryRequest import (
    Order,
    ProductType,
    TransactionHistoryRequest,
)
from appstoreserverlibrary.models.TransactionReason import TransactionReason
from appstoreserverlibrary.models.Type import Type
from appstoreserverlibrary.signed_data_verifier import (
    SignedDataVerifier,
    VerificationException,
    VerificationStatus,
)


class CheckFailed(Exception):
    """A step did not behave as the App Store does."""


def step(message):
    print(f"  ok  {message}", flush=True)


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json"}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"{method} {url} answered {error.code}: {error.read()[:300]!r}") from error
    except urllib.error.URLError as error:
        raise CheckFailed(f"{method} {url} failed: {error}") from error


def http_json(method, url, body=None):
    return json.loads(call(method, url, body))


class Notifications:
    """A local HTTP server that takes App Store Server Notifications."""

    def __init__(self):
        self.received = queue.Queue()
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length", "0"))
                received.put((self.headers.get("content-type"), self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notifications"

    def next_of(self, verifier, notification_type, original_transaction_id=None, timeout=30):
        """The next notification of this type (others, such as retries, are passed over),
        verified and decoded."""
        while True:
            try:
                content_type, body = self.received.get(timeout=timeout)
            except queue.Empty as error:
                raise CheckFailed(f"no {notification_type.value} notification arrived") from error
            expect(
                content_type == "application/json",
                f"a notification came as {content_type}, not application/json",
            )
            signed_payload = json.loads(body)["signedPayload"]
            try:
                decoded = verifier.verify_and_decode_notification(signed_payload)
            except VerificationException:
                # The other environment's notifications are not this verifier's.
                continue
            if decoded.notificationType != notification_type:
                continue
            if original_transaction_id is not None:
                transaction = verifier.verify_and_decode_signed_transaction(
                    decoded.data.signedTransactionInfo
                )
                if transaction.originalTransactionId != original_transaction_id:
                    continue
            return decoded

    def close(self):
        self.server.shutdown()


def expect_api_error(call, status, error, what):
    try:
        call()
    except APIException as exception:
        expect(
            exception.http_status_code == status,
            f"{what}: HTTP {exception.http_status_code}, not {status}",
        )
        if error is not None:
            expect(
                exception.api_error == error and exception.raw_api_error == error.value,
                f"{what}: error {exception.raw_api_error}, not {error.value}",
            )
        return
    raise CheckFailed(f"{what}: no APIException")


def expect_refused(verify, jws, status, what):
    try:
        verify(jws)
    except VerificationException as exception:
        expect(
            status is None or exception.status == status,
            f"{what}: {exception.status.name} instead of {status.name if status else '-'}",
        )
        return
    raise CheckFailed(f"{what}: accepted")


def tampered(jws):
    header, payload, signature = jws.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["price"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def without_intermediate(jws):
    header, payload, signature = jws.split(".")
    fields = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    fields["x5c"] = [fields["x5c"][0], fields["x5c"][2]]
    changed = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    return f"{changed}.{payload}.{signature}"


def check(apple_url, control_url, clock_url):
    app = http_json("GET", f"{control_url}/apple/app")
    bundle_id = app["bundleId"]
    app_apple_id = app["appAppleId"]
    key = next(key for key in app["apiKeys"] if key.get("privateKeyPem"))
    product_id = app["products"][0]["productId"]
    expect(app["productionUrl"] == apple_url, f"the app's production URL is {app['productionUrl']}")
    root = call("GET", app["rootCertificateUrl"])
    step(f"app {bundle_id} ({app_apple_id}), key {key['keyId']}, root certificate {len(root)} bytes")

    sandbox = SignedDataVerifier([root], False, Environment.SANDBOX, bundle_id)
    production = SignedDataVerifier([root], False, Environment.PRODUCTION, bundle_id, app_apple_id)

    notifications = Notifications()
    for environment in ("Sandbox", "Production"):
        http_json(
            "POST",
            f"{control_url}/apple/notification_urls",
            {"environment": environment, "url": notifications.url},
        )
    step(f"notifications go to {notifications.url}")

    app_account_token = str(uuid.uuid4())
    customer = f"sdk-check-{uuid.uuid4().hex[:8]}"
    purchase = http_json(
        "POST",
        f"{control_url}/apple/purchases",
        {
            "productId": product_id,
            "environment": "Sandbox",
            "bundleId": bundle_id,
            "customer": customer,
            "appAccountToken": app_account_token,
        },
    )
    transaction_id = purchase["transactionId"]
    original_id = purchase["originalTransactionId"]
    transaction = sandbox.verify_and_decode_signed_transaction(purchase["signedTransaction"])
    expect(transaction.transactionId == transaction_id, "the signed transaction's id")
    expect(transaction.originalTransactionId == original_id, "originalTransactionId")
    expect(transaction.bundleId == bundle_id and transaction.productId == product_id, "bundle and product")
    expect(transaction.environment == Environment.SANDBOX, f"environment {transaction.rawEnvironment}")
    expect(transaction.type == Type.AUTO_RENEWABLE_SUBSCRIPTION, f"type {transaction.rawType}")
    expect(transaction.transactionReason == TransactionReason.PURCHASE, "transactionReason PURCHASE")
    expect(transaction.inAppOwnershipType == InAppOwnershipType.PURCHASED, "inAppOwnershipType")
    expect(str(transaction.appAccountToken) == app_account_token, "appAccountToken")
    expect(transaction.expiresDate > transaction.purchaseDate, "expiresDate after purchaseDate")
    expect(transaction.price == app["products"][0]["priceMilliunits"], f"price {transaction.price}")
    expect(transaction.quantity == 1 and transaction.webOrderLineItemId, "quantity and webOrderLineItemId")
    renewal = sandbox.verify_and_decode_renewal_info(purchase["signedRenewalInfo"])
    expect(renewal.autoRenewStatus == AutoRenewStatus.ON, "autoRenewStatus ON")
    expect(renewal.originalTransactionId == original_id, "the renewal info's originalTransactionId")
    step(f"purchase {transaction_id}: signed transaction and renewal info verified (sandbox)")

    subscribed = notifications.next_of(sandbox, NotificationTypeV2.SUBSCRIBED, original_id)
    expect(subscribed.subtype == Subtype.INITIAL_BUY, f"subtype {subscribed.rawSubtype}")
    expect(subscribed.version == "2.0" and subscribed.notificationUUID, "version and notificationUUID")
    expect(subscribed.data.status == Status.ACTIVE, "status ACTIVE")
    sandbox.verify_and_decode_renewal_info(subscribed.data.signedRenewalInfo)
    step("SUBSCRIBED / INITIAL_BUY received and verified")

    private_key = key["privateKeyPem"].encode()
    client = AppStoreServerAPIClient(private_key, key["keyId"], key["issuerId"], bundle_id, Environment.SANDBOX)
    client._base_url = app["sandboxUrl"]
    info = client.get_transaction_info(transaction_id)
    decoded = sandbox.verify_and_decode_signed_transaction(info.signedTransactionInfo)
    expect(decoded.transactionId == transaction_id, "get_transaction_info's transaction")
    step("get_transaction_info")

    statuses = client.get_all_subscription_statuses(transaction_id)
    expect(statuses.environment == Environment.SANDBOX, "statuses' environment")
    expect(statuses.bundleId == bundle_id, "statuses' bundleId")
    expect(len(statuses.data) == 1 and len(statuses.data[0].lastTransactions) == 1, "one subscription")
    last = statuses.data[0].lastTransactions[0]
    expect(last.status == Status.ACTIVE and last.originalTransactionId == original_id, "the subscription is active")
    sandbox.verify_and_decode_signed_transaction(last.signedTransactionInfo)
    sandbox.verify_and_decode_renewal_info(last.signedRenewalInfo)
    filtered = client.get_all_subscription_statuses(original_id, [Status.EXPIRED, Status.REVOKED])
    expect(filtered.data == [], "a status filter that matches nothing")
    step("get_all_subscription_statuses (and with a status filter)")

    for version in (GetTransactionHistoryVersion.V1, GetTransactionHistoryVersion.V2):
        history = client.get_transaction_history(
            transaction_id,
            None,
            TransactionHistoryRequest(
                sort=Order.DESCENDING,
                revoked=False,
                productTypes=[ProductType.AUTO_RENEWABLE],
                productIds=[product_id],
            ),
            version,
        )
        expect(history.hasMore is False and history.revision, f"{version.value}: one page with a revision")
        expect(len(history.signedTransactions) == 1, f"{version.value}: one transaction")
        expect(
            sandbox.verify_and_decode_signed_transaction(history.signedTransactions[0]).transactionId
            == transaction_id,
            f"{version.value}: the purchase",
        )
        empty = client.get_transaction_history(
            transaction_id, None, TransactionHistoryRequest(revoked=True), version
        )
        expect(empty.signedTransactions == [], f"{version.value}: no revoked transaction")
    step("get_transaction_history v1 and v2 (with filters)")

    test = client.request_test_notification()
    received = notifications.next_of(sandbox, NotificationTypeV2.TEST)
    expect(received.data.bundleId == bundle_id, "the TEST notification's bundle")
    status = client.get_test_notification_status(test.testNotificationToken)
    expect(status.signedPayload, "the test notification's payload")
    sandbox.verify_and_decode_notification(status.signedPayload)
    expect(
        status.sendAttempts and status.sendAttempts[0].sendAttemptResult == SendAttemptResult.SUCCESS,
        "the test notification's attempt succeeded",
    )
    step("request_test_notification and get_test_notification_status")

    expect_api_error(
        lambda: client.get_transaction_info("2999999999999999"),
        404,
        APIError.TRANSACTION_ID_NOT_FOUND,
        "an unknown transaction",
    )
    expect_api_error(
        lambda: client.get_transaction_info("not-a-transaction"),
        400,
        APIError.INVALID_TRANSACTION_ID,
        "a malformed transaction id",
    )
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    foreign = AppStoreServerAPIClient(stranger, key["keyId"], key["issuerId"], bundle_id, Environment.SANDBOX)
    foreign._base_url = app["sandboxUrl"]
    expect_api_error(lambda: foreign.get_transaction_info(transaction_id), 401, None, "a key the App Store does not know")
    production_client = AppStoreServerAPIClient(
        private_key, key["keyId"], key["issuerId"], bundle_id, Environment.PRODUCTION
    )
    production_client._base_url = app["productionUrl"]
    expect_api_error(
        lambda: production_client.get_transaction_info(transaction_id),
        404,
        APIError.TRANSACTION_ID_NOT_FOUND,
        "a sandbox transaction in production",
    )
    step("APIException 4040010, 4000006, 401; environments kept apart")

    expect_refused(
        sandbox.verify_and_decode_signed_transaction,
        tampered(purchase["signedTransaction"]),
        VerificationStatus.VERIFICATION_FAILURE,
        "a tampered transaction",
    )
    expect_refused(
        sandbox.verify_and_decode_signed_transaction,
        without_intermediate(purchase["signedTransaction"]),
        VerificationStatus.INVALID_CHAIN_LENGTH,
        "a chain without its intermediate",
    )
    step("tampered JWS refused")

    bought = http_json(
        "POST",
        f"{control_url}/apple/purchases",
        {"productId": product_id, "environment": "Production", "customer": customer},
    )
    decoded = production.verify_and_decode_signed_transaction(bought["signedTransaction"])
    expect(decoded.environment == Environment.PRODUCTION, "a production transaction")
    expect_refused(
        sandbox.verify_and_decode_signed_transaction,
        bought["signedTransaction"],
        VerificationStatus.INVALID_ENVIRONMENT,
        "a production transaction in a sandbox verifier",
    )
    in_production = notifications.next_of(production, NotificationTypeV2.SUBSCRIBED, bought["originalTransactionId"])
    expect(in_production.data.appAppleId == app_apple_id, "the production notification's appAppleId")
    info = production_client.get_transaction_info(bought["transactionId"])
    production.verify_and_decode_signed_transaction(info.signedTransactionInfo)
    production_statuses = production_client.get_all_subscription_statuses(bought["transactionId"])
    expect(production_statuses.appAppleId == app_apple_id, "production statuses' appAppleId")
    step("a production purchase: production verifier (app_apple_id), notification and client")

    def verify_receipt(url, receipt, password):
        body = {"receipt-data": receipt, "password": password, "exclude-old-transactions": True}
        return http_json("POST", f"{url}/verifyReceipt", body)

    answer = verify_receipt(app["sandboxUrl"], purchase["appReceipt"], app["sharedSecret"])
    expect(answer["status"] == 0, f"verifyReceipt status {answer['status']}")
    expect(answer["environment"] == "Sandbox", "verifyReceipt's environment")
    expect(answer["receipt"]["bundle_id"] == bundle_id, "the receipt's bundle_id")
    expect(
        [item["transaction_id"] for item in answer["latest_receipt_info"]] == [transaction_id],
        "latest_receipt_info",
    )
    expect(answer["pending_renewal_info"][0]["auto_renew_status"] == "1", "pending_renewal_info")
    expect(verify_receipt(app["sandboxUrl"], purchase["appReceipt"], "wrong")["status"] == 21004, "21004")
    expect(verify_receipt(apple_url, purchase["appReceipt"], app["sharedSecret"])["status"] == 21007, "21007")
    expect(verify_receipt(app["sandboxUrl"], "bm90IGEgcmVjZWlwdA==", app["sharedSecret"])["status"] == 21002, "21002")
    step("verifyReceipt: 0, 21004, 21007, 21002")

    http_json("POST", clock_url, {"advance": "32d"})
    renewed = notifications.next_of(sandbox, NotificationTypeV2.DID_RENEW, original_id)
    expect(renewed.subtype is None, f"DID_RENEW's subtype {renewed.rawSubtype}")
    expect(renewed.data.status == Status.ACTIVE, "the renewed subscription is active")
    renewal_transaction = sandbox.verify_and_decode_signed_transaction(renewed.data.signedTransactionInfo)
    expect(renewal_transaction.transactionReason == TransactionReason.RENEWAL, "a RENEWAL")
    expect(renewal_transaction.transactionId != transaction_id, "a new transaction id")
    expect(
        renewal_transaction.webOrderLineItemId != transaction.webOrderLineItemId,
        "a new webOrderLineItemId",
    )
    expect(renewal_transaction.purchaseDate == transaction.expiresDate, "renewed where the purchase expired")
    step("clock moved 32 days: DID_RENEW received and verified")
    notifications.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apple-url", required=True, help="the simulator's production base URL")
    parser.add_argument("--control-url", required=True, help="the control surface, e.g. .../sim/control")
    parser.add_argument("--clock-url", required=True, help="the virtual clock, e.g. .../sim/clock")
    arguments = parser.parse_args()
    print(f"app-store-server-library against {arguments.apple_url}", flush=True)
    try:
        check(arguments.apple_url.rstrip("/"), arguments.control_url.rstrip("/"), arguments.clock_url)
    except (CheckFailed, APIException, VerificationException) as error:
        print(f"FAILED: {error!r}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks that Stripe's official Python library (stripe) works unchanged against a Stripe
API endpoint: boxoffice's Stripe simulator, or Stripe's test mode.

Only the base URL differs from production use: a StripeClient with the secret key and
base_addresses={"api": ...}. The check creates a customer; pays a payment intent with
pm_card_visa (created, then confirmed -> succeeded, the charge expanded); sees a declined
card raise the library's CardError (code card_declined, the decline message, the intent in
requires_payment_method) for pm_card_chargeDeclined and
pm_card_chargeDeclinedInsufficientFunds; pays with pm_card_authenticationRequired
(requires_action, then succeeded once the simulator's control surface plays the customer);
confirms a setup intent with a test card (the card
saved on the customer); refunds a payment in part and then in full.

Then webhooks: it runs a small HTTP server on a random local port, creates a webhook
endpoint pointing at it, causes events, asks the simulator's control surface to deliver
them (POST {control}/stripe/webhooks/deliver), and verifies what arrives with
stripe.Webhook.construct_event(payload, Stripe-Signature, secret); a tampered payload and a
wrong secret must raise SignatureVerificationError. It lists and retrieves the events,
lists and deletes the endpoint.

Last, it compares the names of every field of every object it received (at any depth) with
the fields the library's own classes declare (generated from Stripe's OpenAPI spec for the
library's API version): a field the library does not know is a difference from Stripe.

Exit status 0 when every step passed; 1 with a message naming the failed step otherwise.
"""

import argparse
import ast
import http.server
import importlib
import inspect
import json
import queue
import secrets
import sys
import threading
import typing
import urllib.error
import urllib.request

import stripe
import stripe._object_classes
import stripe._stripe_object


class CheckFailed(Exception):
    """A step did not behave as Stripe does."""


def step(message):
    print(f"  ok  {message}", flush=True)


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def http_post_json(url, body=None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body or {}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise CheckFailed(f"POST {url} answered {error.code}: {error.read()[:300]!r}") from error
    except (urllib.error.URLError, ValueError) as error:
        raise CheckFailed(f"POST {url} failed: {error}") from error


def default_control_url(api_base):
    """Simulator mode mounts Stripe at /sim/stripe and the control surface at /sim/control;
    a simulator alone on its port has its controls at /control of that port."""
    base = api_base.rstrip("/")
    if base.endswith("/sim/stripe"):
        return base[: -len("/stripe")] + "/control"
    return base + "/control"


# --- Field names against the library's classes -------------------------------------------
#
# The library's classes are generated from Stripe's OpenAPI spec for its API version: each
# declares its fields as annotations (nested objects as nested classes; other resources as
# forward references to names imported under TYPE_CHECKING, which are resolved here from the
# module's source).


def _type_checking_imports(module):
    """`name -> (module, attribute)` for the `from X import Y [as Z]` under `if TYPE_CHECKING:`."""
    cached = getattr(module, "__sdk_check_imports__", None)
    if cached is not None:
        return cached
    names = {}
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        tree = None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    for alias in inner.names:
                        names[alias.asname or alias.name] = (inner.module, alias.name)
    module.__sdk_check_imports__ = names
    return names


def _resolve(name, owner):
    """The class a forward reference `name` in a field of `owner` stands for, or None."""
    module = sys.modules[owner.__module__]
    scope = module
    candidates = [vars(owner)]
    for part in owner.__qualname__.split(".")[:-1]:
        scope = getattr(scope, part)
        candidates.append(vars(scope))
    candidates.append(vars(module))
    for namespace in candidates:
        found = namespace.get(name)
        if isinstance(found, type):
            return found
    imported = _type_checking_imports(module).get(name)
    if imported:
        return getattr(importlib.import_module(imported[0]), imported[1], None)
    return None


def _field_types(cls):
    """`field name -> (annotation, class it was declared in)` for a StripeObject class."""
    fields = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():
            if not name.startswith("_") and name != "OBJECT_NAME":
                fields[name] = (annotation, klass)
    return fields


def _is_map(annotation):
    """A free-form map: `metadata: UntypedStripeObject[str]`, `Dict[str, str]`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        return any(_is_map(argument) for argument in typing.get_args(annotation))
    if origin in (dict, typing.Dict):
        return True
    untyped = getattr(stripe._stripe_object, "UntypedStripeObject", None)
    return untyped is not None and (annotation is untyped or origin is untyped)


def _object_classes(annotation, owner):
    """The StripeObject classes a field's annotation admits (through Optional, Union,
    ExpandableField, List, ListObject and forward references)."""
    if isinstance(annotation, typing.ForwardRef):
        annotation = _resolve(annotation.__forward_arg__, owner)
    elif isinstance(annotation, str):
        annotation = _resolve(annotation, owner)
    if annotation is None:
        return []
    origin = typing.get_origin(annotation)
    if origin is None:
        if isinstance(annotation, type) and issubclass(annotation, stripe.StripeObject):
            return [annotation]
        return []
    found = []
    for argument in typing.get_args(annotation):
        found.extend(_object_classes(argument, owner))
    return found


def _class_for(obj_name):
    cls = stripe._object_classes.get_object_class("V1", obj_name)
    return None if cls is stripe.StripeObject else cls


def unknown_fields(value, cls, path, out):
    """Appends to `out` the paths of fields in the JSON `value` that `cls` does not declare."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            unknown_fields(item, cls, f"{path}/{index}", out)
        return
    if not isinstance(value, dict):
        return
    if value.get("object") == "list":
        for index, item in enumerate(value.get("data") or []):
            item_cls = _class_for(item.get("object")) if isinstance(item, dict) else None
            if item_cls is not None:
                unknown_fields(item, item_cls, f"{path}/data/{index}", out)
        return
    fields = _field_types(cls)
    for name, inner in value.items():
        if name not in fields:
            out.append(f"{path}/{name}")
            continue
        annotation, owner = fields[name]
        if inner is None or _is_map(annotation):
            continue
        candidates = _object_classes(annotation, owner)
        if isinstance(inner, dict) and inner.get("object") not in (None, "list"):
            by_object = [c for c in candidates if getattr(c, "OBJECT_NAME", None) == inner.get("object")]
            candidates = by_object or candidates
        if len(candidates) == 1:
            unknown_fields(inner, candidates[0], f"{path}/{name}", out)


def check_field_names(received):
    """Every field of every object received is one the library's classes declare."""
    problems = []
    for label, value in received:
        cls = _class_for(value.get("object"))
        expect(cls is not None, f"the library has no class for object {value.get('object')!r} ({label})")
        found = []
        unknown_fields(value, cls, "", found)
        about = (value.get("data") or {}).get("object") if value.get("object") == "event" else None
        about_cls = _class_for(about.get("object")) if isinstance(about, dict) else None
        if about_cls is not None:
            # Event.data.object is untyped in the library: check it as what it is.
            unknown_fields(about, about_cls, "/data/object", found)
        problems.extend(f"{label} ({cls.__name__}): {path}" for path in found)
    expect(
        not problems,
        f"fields the simulator sends that stripe {stripe.VERSION} (API {stripe.api_version}) does not "
        "declare:\n    " + "\n    ".join(problems),
    )
    step(
        f"the field names of {len(received)} objects received are all declared by the library's "
        f"classes (API {stripe.api_version})"
    )


# --- Webhook receiver -----------------------------------------------------------------------


class Receiver:
    """A local HTTP server that answers 200 and queues (path, body bytes, headers)."""

    def __init__(self):
        received = queue.Queue()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                received.put((self.path, body, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"received": true}')

            def log_message(self, *args):
                pass

        self.queue = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/stripe/webhooks"

    def next(self, timeout=10):
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty as error:
            raise CheckFailed(f"no webhook arrived at {self.url} within {timeout}s") from error

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- The check ------------------------------------------------------------------------------


def run(args):
    client = stripe.StripeClient(args.secret_key, base_addresses={"api": args.api_base.rstrip("/")})
    v1 = client.v1
    control_url = (args.control_url or default_control_url(args.api_base)).rstrip("/")
    received = []  # (label, JSON) of every object, for the field-name comparison

    def keep(label, obj):
        received.append((label, obj.to_dict()))
        return obj

    email = f"sdk-check-{secrets.token_hex(4)}@example.com"
    customer = keep(
        "customer",
        v1.customers.create({"email": email, "name": "Sdk Check", "metadata": {"plan": "gold"}}),
    )
    expect(isinstance(customer, stripe.Customer), f"customers.create gave a {type(customer).__name__}")
    expect(customer.id.startswith("cus_"), f"customer id {customer.id!r}")
    expect(customer.email == email and customer.metadata["plan"] == "gold", f"customer is {customer}")
    again = v1.customers.retrieve(customer.id)
    expect(again.id == customer.id and again.name == "Sdk Check", f"retrieved {again}")
    listed = v1.customers.list({"limit": 3})
    expect(any(c.id == customer.id for c in listed.data), "the new customer is not in the list")
    step(f"customer {customer.id} created, retrieved, listed")

    intent = keep(
        "payment_intent (created)",
        v1.payment_intents.create(
            {
                "amount": 1999,
                "currency": "nok",
                "customer": customer.id,
                "payment_method_types": ["card"],
                "metadata": {"order": "sdk-1"},
            }
        ),
    )
    expect(intent.status == "requires_payment_method", f"new intent status {intent.status!r}")
    expect(intent.client_secret.startswith(f"{intent.id}_secret_"), f"client_secret {intent.client_secret!r}")
    confirmed = keep(
        "payment_intent (confirmed)",
        v1.payment_intents.confirm(intent.id, {"payment_method": "pm_card_visa", "expand": ["latest_charge"]}),
    )
    expect(confirmed.status == "succeeded", f"confirmed intent status {confirmed.status!r}")
    expect(confirmed.amount_received == 1999, f"amount_received {confirmed.amount_received}")
    charge = confirmed.latest_charge
    expect(isinstance(charge, stripe.Charge), f"expanded latest_charge is a {type(charge).__name__}")
    expect(charge.paid and charge.status == "succeeded" and charge.amount_captured == 1999, f"charge {charge}")
    expect(charge.payment_method_details.card.last4 == "4242", "the charge's card is not the 4242 Visa")
    step(f"payment intent {intent.id} confirmed with pm_card_visa -> succeeded, charge {charge.id}")

    for token, decline_code, message in (
        ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "Your card has insufficient funds."),
    ):
        try:
            v1.payment_intents.create(
                {
                    "amount": 1000,
                    "currency": "usd",
                    "customer": customer.id,
                    "payment_method": token,
                    "confirm": True,
                }
            )
        except stripe.CardError as error:
            expect(error.http_status == 402, f"{token}: HTTP {error.http_status}")
            expect(error.code == "card_declined", f"{token}: code {error.code!r}")
            expect(error.user_message == message, f"{token}: message {error.user_message!r}")
            expect(error.error.decline_code == decline_code, f"{token}: decline_code {error.error.decline_code!r}")
            declined = error.error.payment_intent
            expect(declined is not None, f"{token}: the error carries no payment_intent")
            expect(declined.status == "requires_payment_method", f"{token}: intent status {declined.status!r}")
            expect(
                declined.last_payment_error is not None and declined.last_payment_error.code == "card_declined",
                f"{token}: last_payment_error {declined.last_payment_error}",
            )
            keep(f"payment_intent (declined, {token})", declined)
            step(f"{token} -> CardError card_declined/{decline_code}: {error.user_message}")
        else:
            raise CheckFailed(f"{token} was not declined")

    three_ds = keep(
        "payment_intent (requires_action)",
        v1.payment_intents.create(
            {
                "amount": 1200,
                "currency": "eur",
                "customer": customer.id,
                "payment_method": "pm_card_authenticationRequired",
                "confirm": True,
            }
        ),
    )
    expect(three_ds.status == "requires_action", f"3D Secure card: status {three_ds.status!r}")
    expect(three_ds.next_action.type == "use_stripe_sdk", f"next_action {three_ds.next_action}")
    http_post_json(f"{control_url}/stripe/intents/{three_ds.id}/confirm")
    three_ds = keep("payment_intent (authenticated)", v1.payment_intents.retrieve(three_ds.id))
    expect(three_ds.status == "succeeded", f"after the customer's 3D Secure: {three_ds.status!r}")
    step("pm_card_authenticationRequired -> requires_action; the customer authenticates -> succeeded")

    setup = keep(
        "setup_intent (created)",
        v1.setup_intents.create({"customer": customer.id, "usage": "off_session", "payment_method_types": ["card"]}),
    )
    expect(setup.status == "requires_payment_method", f"new setup intent status {setup.status!r}")
    setup = keep(
        "setup_intent (confirmed)",
        v1.setup_intents.confirm(setup.id, {"payment_method": "pm_card_visa"}),
    )
    expect(setup.status == "succeeded", f"confirmed setup intent status {setup.status!r}")
    saved = keep("payment_method", v1.payment_methods.retrieve(setup.payment_method))
    expect(saved.customer == customer.id, f"the card is attached to {saved.customer!r}")
    methods = v1.customers.payment_methods.list(customer.id)
    expect(any(m.id == saved.id for m in methods.data), "the saved card is not among the customer's")
    step(f"setup intent {setup.id} confirmed with pm_card_visa -> succeeded, card {saved.id} saved")

    paid = v1.payment_intents.create(
        {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    expect(paid.status == "succeeded", f"payment to refund: {paid.status!r}")
    partial = keep("refund (partial)", v1.refunds.create({"payment_intent": paid.id, "amount": 400}))
    expect(
        partial.amount == 400 and partial.status == "succeeded" and partial.charge == paid.latest_charge,
        f"partial refund {partial}",
    )
    rest = keep("refund (rest)", v1.refunds.create({"charge": paid.latest_charge}))
    expect(rest.amount == 600 and rest.status == "succeeded", f"refund of the rest {rest}")
    refunded = keep("charge (refunded)", v1.charges.retrieve(paid.latest_charge))
    expect(refunded.refunded and refunded.amount_refunded == 1000, f"charge after refunds {refunded}")
    try:
        v1.refunds.create({"charge": paid.latest_charge})
    except stripe.InvalidRequestError as error:
        expect(error.code == "charge_already_refunded", f"refunding again: code {error.code!r}")
    else:
        raise CheckFailed("a fully refunded charge was refunded again")
    full_paid = v1.payment_intents.create(
        {"amount": 2500, "currency": "nok", "payment_method": "pm_card_mastercard", "confirm": True}
    )
    full = keep("refund (full)", v1.refunds.create({"payment_intent": full_paid.id}))
    expect(full.amount == 2500 and full.status == "succeeded", f"full refund {full}")
    step(f"refunds: 400 then 600 of {paid.latest_charge} (then InvalidRequestError), 2500 of {full_paid.id}")

    webhooks(v1, control_url, keep)

    check_field_names(received)


def webhooks(v1, control_url, keep):
    receiver = Receiver()
    try:
        endpoint = v1.webhook_endpoints.create(
            {
                "url": receiver.url,
                "enabled_events": ["customer.created", "payment_intent.succeeded"],
                "description": "stripe_check.py",
            }
        )
        expect(endpoint.id.startswith("we_"), f"webhook endpoint id {endpoint.id!r}")
        expect(endpoint.secret and endpoint.secret.startswith("whsec_"), f"secret {endpoint.secret!r}")
        expect(endpoint.url == receiver.url and endpoint.status == "enabled", f"endpoint {endpoint}")
        keep("webhook_endpoint", endpoint)
        step(f"webhook endpoint {endpoint.id} -> {receiver.url}")

        customer = v1.customers.create({"email": f"hook-{secrets.token_hex(4)}@example.com"})
        paid = v1.payment_intents.create(
            {"amount": 1500, "currency": "eur", "customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
        )
        expect(paid.status == "succeeded", f"payment for the webhook: {paid.status!r}")
        report = http_post_json(f"{control_url}/stripe/webhooks/deliver")
        step(f"POST {control_url}/stripe/webhooks/deliver -> {json.dumps(report)[:200]}")

        events = {}
        raw = None
        while len(events) < 2:
            path, body, headers = receiver.next()
            headers = {name.lower(): value for name, value in headers.items()}
            signature = headers.get("stripe-signature")
            expect(signature, f"a webhook arrived at {path} without Stripe-Signature")
            try:
                event = stripe.Webhook.construct_event(body.decode("utf-8"), signature, endpoint.secret)
            except stripe.SignatureVerificationError as error:
                raise CheckFailed(f"construct_event refused the simulator's signature: {error}") from error
            events[event.type] = event
            keep(f"event {event.type} (webhook)", event)
            raw = raw or (body, signature)
        created, succeeded = events.get("customer.created"), events.get("payment_intent.succeeded")
        expect(created is not None and succeeded is not None, f"events received: {sorted(events)}")
        expect(created.data.object.id == customer.id, f"customer.created is about {created.data.object.id}")
        expect(
            succeeded.data.object.id == paid.id and succeeded.data.object.status == "succeeded",
            f"payment_intent.succeeded is about {succeeded.data.object.id}",
        )
        step(
            f"construct_event verified {created.id} (customer.created) and {succeeded.id} "
            "(payment_intent.succeeded)"
        )

        body, signature = raw
        tampered = body.replace(b'"livemode":false', b'"livemode":true', 1)
        if tampered == body:
            tampered = body[:-1] + b" }"
        for label, payload, secret in (
            ("a tampered payload", tampered, endpoint.secret),
            ("another secret", body, "whsec_" + secrets.token_hex(16)),
        ):
            try:
                stripe.Webhook.construct_event(payload.decode("utf-8"), signature, secret)
            except stripe.SignatureVerificationError:
                step(f"{label} -> SignatureVerificationError")
            else:
                raise CheckFailed(f"construct_event accepted {label}")

        listed = v1.events.list({"type": "customer.created", "limit": 10})
        expect(any(e.id == created.id for e in listed.data), "events.list(type=customer.created) misses the event")
        fetched = keep("event (retrieved)", v1.events.retrieve(succeeded.id))
        expect(fetched.type == "payment_intent.succeeded", f"events.retrieve gave {fetched.type!r}")
        endpoints = v1.webhook_endpoints.list()
        expect(any(e.id == endpoint.id for e in endpoints.data), "webhook_endpoints.list misses the endpoint")
        deleted = keep("webhook_endpoint (deleted)", v1.webhook_endpoints.delete(endpoint.id))
        expect(deleted.id == endpoint.id and deleted.deleted is True, f"delete gave {deleted}")
        step(f"events listed and retrieved; endpoint {endpoint.id} listed and deleted")
    finally:
        receiver.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", required=True, help="the API base, e.g. http://127.0.0.1:8080/sim/stripe")
    parser.add_argument("--secret-key", required=True, help="the account's sk_test_ key")
    parser.add_argument(
        "--control-url",
        help="the simulator's control surface (default: derived from --api-base, "
        "e.g. http://127.0.0.1:8080/sim/control)",
    )
    args = parser.parse_args()
    print(
        f"stripe SDK check against {args.api_base} (stripe {stripe.VERSION}, API {stripe.api_version})",
        flush=True,
    )
    try:
        run(args)
    except CheckFailed as error:
        print(f"FAIL: {error}", file=sys.stderr)
        return 1
    except stripe.StripeError as error:
        print(
            f"FAIL: the library raised {type(error).__name__} (HTTP {error.http_status}, code {error.code}): "
            f"{error.user_message or error}",
            file=sys.stderr,
        )
        return 1
    print("stripe SDK check passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

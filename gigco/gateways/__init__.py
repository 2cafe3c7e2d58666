"""Payment processors behind ``gigco.lifecycle.gateway.PaymentGateway`` that speak to the
outside over HTTP (Stripe through its SDK): a sibling above the lifecycle, like webhooks, so
that the domain layer stays transport-free. The simulated processor, which keeps its ledger
in our database, lives with the interface."""

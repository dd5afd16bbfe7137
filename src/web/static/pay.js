// Guildhall's card form: Stripe.js mounts its card element and confirms the
// PaymentIntent with its client secret; the card never reaches Guildhall.
// The bounty is booked into escrow when Stripe's signed webhook arrives.
(function () {
  "use strict";
  var form = document.getElementById("pay-form");
  if (!form) { return; }
  var status = document.getElementById("pay-status");
  if (typeof window.Stripe !== "function") {
    status.textContent = "The card form could not load. Please try again later.";
    return;
  }
  var stripe = window.Stripe(form.getAttribute("data-key"));
  var card = stripe.elements().create("card");
  card.mount("#card");
  var button = form.querySelector("button[type=submit]");
  button.disabled = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    status.textContent = "Paying…";
    stripe
      .confirmCardPayment(form.getAttribute("data-client-secret"), { payment_method: { card: card } })
      .then(function (result) {
        if (result.error) {
          status.textContent = "The payment did not go through: " +
            (result.error.message || "please check the card and try again") + ".";
          button.disabled = false;
        } else {
          status.textContent = "Paid. The bounty shows in escrow as soon as Stripe confirms it.";
          window.location.assign(form.getAttribute("data-return"));
        }
      });
  });
})();

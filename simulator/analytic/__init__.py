"""The analytic models: kernel profiles, pricing of the operation list, training, serving, the report."""

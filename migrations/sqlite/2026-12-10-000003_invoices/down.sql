DROP INDEX sla_clocks_ticket;
DROP TABLE invoices;
DROP TABLE invoice_sequences;
DROP TABLE billing_details;

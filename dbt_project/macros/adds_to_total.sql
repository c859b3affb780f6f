{#
    Whether an invoice line adds to the invoice's total: every line but an
    inclusive tax line, which shows the tax the other lines already contain
    (SPEC §12 step 4). The rule's one home: the drafts carry it as a column,
    issuing copies it to billing.invoice_lines.adds_to_total, and every sum
    of lines into a total reads that column.
#}
{% macro adds_to_total(kind, detail) -%}
    not ({{ kind }} = 'tax' and coalesce(({{ detail }} ->> 'inclusive')::boolean, false))
{%- endmacro %}

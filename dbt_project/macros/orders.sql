{#- Order lines (the `orders:` section of the declaration, docs/declaration.md): the roles
    a file's columns play, and what differs between engines. -#}

{#- The declared order-line roles ({key: {column, formats}}); empty without order lines. -#}
{% macro order_roles() -%}
    {{ return(declaration().orders or {}) }}
{%- endmacro %}

{#- The roles a line may carry, in order; a role not declared reads as NULL. -#}
{% macro order_role_keys() -%}
    {{ return(['customer', 'order', 'date', 'amount', 'quantity', 'price', 'category', 'channel', 'country', 'product']) }}
{%- endmacro %}

{#- An id written as a number by a spreadsheet ("17850.0") is the same id as "17850". -#}
{% macro clean_id(expression) -%}
    {{ return(adapter.dispatch('clean_id')(expression)) }}
{%- endmacro %}

{% macro default__clean_id(expression) -%}
    regexp_replace({{ expression }}, '\\.0+$', '')
{%- endmacro %}

{% macro duckdb__clean_id(expression) -%}
    regexp_replace({{ expression }}, '\.0+$', '')
{%- endmacro %}

{#- The reference date: declared (or AS_OF=), else the latest order date not in the future. -#}
{% macro orders_reference_date(date_column) -%}
    {%- set orders = order_roles() -%}
    {%- if orders.as_of -%}
        max(cast({{ sql_string(orders.as_of) }} as date))
    {%- else -%}
        max(case when {{ date_column }} <= current_date then {{ date_column }} end)
    {%- endif -%}
{%- endmacro %}

{#- One 64-bit hash of several columns (NULLs hash alike), to find candidate duplicates;
    equal hashes are then compared value by value, so a collision costs time, not truth. -#}
{% macro row_hash(columns) -%}
    {{ return(adapter.dispatch('row_hash')(columns)) }}
{%- endmacro %}

{% macro default__row_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{% macro duckdb__row_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{#- A sum of money that does not depend on the order the engine adds the values in: each one
    rounded to a millionth and added as a decimal, which is exact, then read back as a double.
    A sum of doubles moves in its last bits from one run to the next as threads split the rows
    differently, and so would the features and, at a boundary, a customer's segment. -#}
{% macro exact_sum(expression) -%}
    cast(sum(cast(round({{ expression }}, 6) as decimal(38, 6))) as double)
{%- endmacro %}

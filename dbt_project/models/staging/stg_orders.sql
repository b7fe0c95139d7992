{#- One row per order line of ORDERS= (none without order lines): each declared role
    cleaned (`<role>__text`, NULL when it spells "missing") and typed. Dates read with the
    declared formats, numbers with a decimal point or comma. Nothing is filtered. -#}
{%- set orders = order_roles() -%}
{%- set missing = orders.missing if orders else var('missing_values') -%}

with

source as (

    select * from {{ source('raw', 'orders') }}

),

folded as (

    -- white space folded once per value (see missing_as_null)
    select
        source_row_number,
        {%- for key in order_role_keys() %}
        {%- if orders[key] %}
        {{ squish(sql_identifier(orders[key].column)) }} as {{ key }}__folded{{ "," if not loop.last }}
        {%- else %}
        cast(null as {{ dbt.type_string() }}) as {{ key }}__folded{{ "," if not loop.last }}
        {%- endif %}
        {%- endfor %}

    from source

),

cleaned as (

    select
        source_row_number,
        {%- for key in order_role_keys() %}
        {{ missing_as_null(key ~ '__folded', missing) }} as {{ key }}__text{{ "," if not loop.last }}
        {%- endfor %}

    from folded

),

typed as (

    select
        *,
        {{ clean_id('customer__text') }} as customer_id,
        order__text as order_id,
        {%- if orders.date %}
        coalesce(
            {%- for format in orders.date.formats %}
            {{ parse_date('date__text', format) }}{{ "," if not loop.last }}
            {%- endfor %}
        ) as order_date,
        {%- else %}
        cast(null as date) as order_date,
        {%- endif %}
        {{ parse_number('amount__text') }} as amount,
        {{ parse_number('quantity__text') }} as quantity,
        {{ parse_number('price__text') }} as unit_price,
        lower(category__text) as category,
        lower(channel__text) as channel,
        country__text as country,
        product__text as product

    from cleaned

)

select * from typed

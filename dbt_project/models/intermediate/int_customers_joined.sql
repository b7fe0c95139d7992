{#- One row per customer of either table: the attributes (int_customers_imputed) and the
    behaviour from the order lines (customer_orders), joined on customer_id. A customer of
    one table only gets the other side filled in: attributes as their declaration imputes
    them (median, most frequent value, constant, fallback), behaviour with the value of
    "no order" (0 orders, 0 spent…; recency: the longest seen). `has_attributes` and
    `has_orders` say which side is real. Without order lines it is int_customers_imputed, and
    refers to no order model (a run given no order lines builds none). -#}
{#- A view, not a table like the other intermediate models: it is a join read by
    customer_features, so the mart's contract checks what the imputation wrote. -#}
{{ config(materialized='view') }}
{%- set attributes = attribute_columns() -%}
{%- set behaviour = declaration().behaviour or [] -%}

with

customers as (

    select * from {{ ref('int_customers_imputed') }}

),
{%- if behaviour %}

behaviour as (

    select * from {{ ref('customer_orders') }}

),

{{ imputation_ctes(attributes, 'customers', 'attribute_medians') }}
behaviour_maxima as (

    select
        {%- for column in behaviour if column.when_no_orders == 'max' %}
        max({{ column.name }}) as {{ column.name }},
        {%- endfor %}
        {%- for column in behaviour if column.when_no_orders == 'median' %}
        {{ median_of(column.name) }} as {{ column.name }},
        {%- endfor %}
        count(*) as customers

    from behaviour

),

joined as (

    select
        coalesce(customers.customer_id, behaviour.customer_id) as customer_id,
        {%- for column in attributes %}
        {{ imputed_value(column, 'customers', 'attribute_medians') }} as {{ column.name }},
        {%- endfor %}
        {%- for column in behaviour %}
        {%- if column.when_no_orders in ('max', 'median') %}
        cast(coalesce(behaviour.{{ column.name }}, behaviour_maxima.{{ column.name }}, 0) as {{ column_type(column) }})
            as {{ column.name }},
        {%- else %}
        coalesce(behaviour.{{ column.name }}, {{ sql_constant(column.when_no_orders, column) }}) as {{ column.name }},
        {%- endif %}
        {%- endfor %}
        cast(coalesce(customers.records_merged, 0) as bigint) as records_merged,
        customers.customer_id is not null as has_attributes,
        behaviour.customer_id is not null as has_orders

    from customers
    full outer join behaviour
        on customers.customer_id = behaviour.customer_id
    cross join attribute_medians
    cross join behaviour_maxima

),

final as (

    select
        *
        {{- level_ranks(attributes) }}

    from joined

)
{%- else %}

final as (

    select
        *,
        true as has_attributes,
        false as has_orders

    from customers

)
{%- endif %}

select * from final
